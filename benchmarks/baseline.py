"""The usual PyTorch way, as a user writes it today: a torchvision Dataset with per-image
transforms through a DataLoader, torchattacks for the attack, a plain optimizer step.
It runs the same model, batch size, thread count and algorithm as classwise."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchattacks
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import VisionDataset


class ArrayDataset(VisionDataset):
    """torchvision's MNIST/CIFAR10 `__getitem__`: a uint8 array to a PIL image, then transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None):
        super().__init__(root="", transform=transform)
        # (N, H, W) for grey as in torchvision.datasets.MNIST, (N, H, W, C) as in CIFAR10
        self.data = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
        self.targets = labels.tolist()

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img = Image.fromarray(self.data[i], mode="L" if self.data.ndim == 3 else "RGB")
        return self.transform(img), self.targets[i]


def loader(data, batch_size, train: bool, workers: int = 0, seed: int = 0) -> DataLoader:
    size = data.shape[1]
    tf = [transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip()] if train else []
    ds = ArrayDataset(data.images.numpy(), data.labels.numpy(), transforms.Compose([*tf, transforms.ToTensor()]))
    return DataLoader(ds, batch_size=batch_size, shuffle=train, num_workers=workers, drop_last=False,
                      generator=torch.Generator().manual_seed(seed))


def make_attack(model, method: str, eps: float, steps: int = 10, alpha: float | None = None):
    if method == "pgd":
        atk = torchattacks.PGD(model, eps=eps, alpha=alpha or eps / 4, steps=steps, random_start=True)
    elif method == "fgsm-rs":
        atk = torchattacks.FFGSM(model, eps=eps, alpha=alpha or 1.25 * eps)
    else:
        raise ValueError(method)
    return atk


def train_epoch(model, dl, optimizer, scheduler, method: str, eps: float, steps: int = 10, bn: str = "eval",
                limit: int | None = None):
    """One adversarial-training epoch (or its first `limit` images). `bn="eval"` is torchattacks'
    default (the attack runs in eval mode); `bn="train"` crafts with batch statistics like the
    Madry / Wong loops."""
    atk = make_attack(model, method, eps, steps)
    if bn == "train":
        atk.set_model_training_mode(model_training=True, batchnorm_training=True)
    model.train()
    seen = 0
    for x, y in dl:
        x_adv = atk(x, y)
        loss = F.cross_entropy(model(x_adv), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        seen += len(y)
        if limit is not None and seen >= limit:
            break
    return seen


def evaluate(model, dl, eps: float, steps: int = 20, num_classes: int = 10):
    """Clean and PGD per-class accuracy on every test image (eval mode, final iterate)."""
    atk = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    model.eval()
    n = np.zeros(num_classes, dtype=int)
    clean = np.zeros(num_classes, dtype=int)
    robust = np.zeros(num_classes, dtype=int)
    for x, y in dl:
        with torch.no_grad():
            c = model(x).argmax(1) == y
        x_adv = atk(x, y)
        with torch.no_grad():
            r = model(x_adv).argmax(1) == y
        np.add.at(n, y.numpy(), 1)
        np.add.at(clean, y.numpy(), c.numpy())
        np.add.at(robust, y.numpy(), r.numpy())
    return clean / n, robust / n
