"""Writers of small data sets in the official on-disk formats, for loader tests."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import scipy.io


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    codes = {np.uint8: 0x08}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype.type], array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def write_mnist_like(folder: Path, n_train=30, n_test=20, size=28, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out[split] = (images, labels)
    return out


def _dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def write_cifar10(root: Path, per_batch=20, n_test=30, seed=0):
    """cifar-10-batches-py/ with byte-string keys, as the Python-2 pickles load in Python 3."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _dump(folder / "batches.meta", {b"label_names": [n.encode() for n in names]})
    batches = {}
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.permutation(np.arange(n) % 10)]  # balanced, as CIFAR-10 is
        _dump(folder / name, {b"data": data, b"labels": labels, b"batch_label": name.encode()})
        batches[name] = (data, labels)
    return folder, names, batches


def write_cifar100(root: Path, n_train=50, n_test=40, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    fine = [f"fine{i}" for i in range(100)]
    coarse = [f"coarse{i}" for i in range(20)]
    superclass_of = [i // 5 for i in range(100)]
    _dump(folder / "meta", {"fine_label_names": fine, "coarse_label_names": coarse})
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 100, n)]
        _dump(folder / split, {"data": data, "fine_labels": labels,
                                "coarse_labels": [superclass_of[v] for v in labels]})
        out[split] = (data, labels)
    return folder, fine, coarse, superclass_of, out


def write_svhn(folder: Path, n_train=25, n_test=15, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)  # digits 1..10, 10 means 0
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y})
        out[split] = (x, y)
    return out


def _jpeg(path: Path, colour, size=(64, 64)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, tuple(int(c) for c in colour)).save(path, quality=95)


def colour_of(label: int):
    return (20 + 23 * label % 230, 200 - 17 * label % 180, 90 + 41 * label % 160)


def write_tiny_imagenet(root: Path, wnids=("n02", "n01", "n03"), train_per_class=3, val_per_class=2):
    """tiny-imagenet-200/ in the official layout (wnids listed unsorted, as in the archive)."""
    folder = root / "tiny-imagenet-200"
    (folder / "wnids.txt").parent.mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    names = {w: f"thing {w}, other name" for w in wnids}
    (folder / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in names.items()) + "n99\tunused\n")
    order = sorted(wnids)
    for w in wnids:
        for i in range(train_per_class):
            _jpeg(folder / "train" / w / "images" / f"{w}_{i}.JPEG", colour_of(order.index(w)))
        (folder / "train" / w / f"{w}_boxes.txt").write_text("")
    lines = []
    for j, w in enumerate(wnids * val_per_class):
        name = f"val_{j}.JPEG"
        _jpeg(folder / "val" / "images" / name, colour_of(order.index(w)))
        lines.append(f"{name}\t{w}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder, order, names


def write_image_tree(root: Path, classes, per_class=2, size=(300, 200)):
    for c, name in enumerate(classes):
        for i in range(per_class):
            _jpeg(root / name / f"img{i}.JPEG", colour_of(c), size)
    return root


def write_robustbench_standins(model_dir: Path, names, images: np.ndarray, labels, *, dataset="cifar10",
                               threat="Linf", seed=0, share=0.7):
    """Stand-in weights for RobustBench zoo models, in RobustBench's model directory layout
    (`<model_dir>/<dataset>/<threat>/<name>.pt`): each model is built by the robustbench package's
    own definition for its name, randomly initialised, and its last linear layer fitted to a random
    `share` of the given (N, 3, 32, 32) uint8 images, so that each stand-in gets other images and
    classes right. Returns {name: the in-memory model}."""
    import torch
    from torch import nn

    from classwise.zoo.package import robustbench

    rb = robustbench()
    entries = rb.models[rb.BenchmarkDataset(dataset)][rb.ThreatModel(threat)]
    x = torch.as_tensor(images).float() / 255
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    rng = np.random.default_rng(seed)
    out = {}
    for i, name in enumerate(names):
        torch.manual_seed(seed + i)
        model = entries[name]["model"]().eval()
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        feats = []
        hook = head.register_forward_hook(lambda _m, inp, _o, feats=feats: feats.append(inp[0].detach().flatten(1)))
        with torch.no_grad():
            model(x)
        hook.remove()
        f = feats[0]
        f = f / f.norm(dim=1, keepdim=True).mean()
        pick = torch.as_tensor(rng.random(len(y)) < share)
        w = nn.Linear(f.shape[1], head.out_features)
        opt = torch.optim.Adam(w.parameters(), lr=0.05)
        for _ in range(150):
            loss = nn.functional.cross_entropy(w(f[pick]) * 10, y[pick])
            opt.zero_grad()
            loss.backward()
            opt.step()
        scale = 10 / feats[0].norm(dim=1, keepdim=True).mean()
        with torch.no_grad():
            head.weight.copy_(w.weight * scale)
            head.bias.copy_(w.bias * 10)
        path = Path(model_dir) / dataset / threat / f"{name}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
        out[name] = model
    return out


def write_model_info(folder: Path, name: str, *, dataset="cifar10", threat="Linf", **fields):
    """A RobustBench `model_info/<dataset>/<threat>/<name>.json` with the given fields
    (accuracies as the leaderboard writes them: percent strings with two decimals)."""
    import json

    path = Path(folder) / dataset / threat / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"link": "", "name": name, "authors": "", "additional_data": False, "number_forward_passes": 1,
            "dataset": dataset, "venue": "", "architecture": "", "eps": "8/255", "clean_acc": "", "reported": "",
            "autoattack_acc": "", "unreliable": False}
    info.update(fields)
    path.write_text(json.dumps(info, indent=2))
    return path
