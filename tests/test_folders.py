"""Tiny-ImageNet, ImageNet and image-folder trees in their official layouts."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from datafiles import colour_of, write_image_tree, write_tiny_imagenet
from PIL import Image
from torchvision import transforms

from classwise.data import FolderSource, load_dataset, load_raw, per_class_subset
from classwise.errors import ClasswiseError


def test_tiny_imagenet_official_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the decoded-tensor cache lives there
    folder, order, names = write_tiny_imagenet(tmp_path)
    train, test = load_raw("tiny-imagenet", tmp_path)
    assert train.classes == [names[w].split(",")[0] for w in order]
    assert train.shape == (3, 64, 64) and len(train) == 9 and len(test) == 6
    assert train.class_counts().tolist() == [3, 3, 3] and test.class_counts().tolist() == [2, 2, 2]
    for data in (train, test):
        for img, label in zip(data.images, data.labels, strict=True):  # JPEG is lossy: near, not equal
            assert (img.float().mean((1, 2)) - torch.tensor(colour_of(int(label)))).abs().max() < 4
    again, _ = load_raw("tiny-imagenet", tmp_path)  # from the cache this time
    assert torch.equal(again.images, train.images)
    assert list((tmp_path / "home" / ".cache" / "classwise").glob("tiny-imagenet-*.pt"))


def test_imagenet_val_tree_streams_with_the_standard_preprocessing(tmp_path):
    wnids = ["n01440764", "n01443537", "n01484850"]
    write_image_tree(tmp_path / "imagenet" / "val", wnids[::-1], per_class=2, size=(300, 400))
    (tmp_path / "imagenet" / "LOC_synset_mapping.txt").write_text(
        "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\nn01484850 great white shark\n")
    splits = load_dataset("imagenet", tmp_path)
    src = splits.test
    assert splits.train is None and isinstance(src, FolderSource)
    assert src.classes == ["tench", "goldfish", "great white shark"]
    assert src.shape == (3, 224, 224)
    files = [p.parent.name for p in src.files]
    assert [wnids.index(f) for f in files] == src.labels.tolist()
    batch = src.images_at([0, 3])
    expected = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.PILToTensor()])
    with Image.open(src.files[3]) as img:
        assert torch.equal(batch[1], expected(img.convert("RGB")))
    assert batch.dtype == torch.uint8 and batch.shape == (2, 3, 224, 224)


def test_per_class_sampling_keeps_every_class_equal(tmp_path):
    write_image_tree(tmp_path / "imagenet" / "val", [f"n{i:08d}" for i in range(5)], per_class=4, size=(40, 40))
    src = load_dataset("imagenet", tmp_path).test
    sub = per_class_subset(src, 2, seed=0)
    assert sub.class_counts().tolist() == [2] * 5
    with pytest.raises(ClasswiseError, match="fewer than --per-class"):
        per_class_subset(src, 5)


def test_imagefolder_with_train_and_val_subtrees(tmp_path):
    classes = ["cat", "dog"]
    write_image_tree(tmp_path / "pets" / "train", classes, per_class=3, size=(50, 40))
    write_image_tree(tmp_path / "pets" / "val", classes, per_class=2, size=(50, 40))
    splits = load_dataset("imagefolder", tmp_path / "pets", val_size=2)
    assert splits.train.classes == classes and splits.test.classes == classes
    assert len(splits.train) + len(splits.val) == 6 and len(splits.test) == 4
    assert splits.train.images.dtype == torch.uint8 and splits.train.shape == (3, 224, 224)
    with pytest.raises(ClasswiseError, match="--data-dir"):
        load_dataset("imagefolder")


def test_evaluate_over_many_classes_lists_worst_and_best_instead_of_a_table(tmp_path):
    from classwise.models import create_model

    classes = [f"k{i:02d}" for i in range(40)]
    write_image_tree(tmp_path / "tree", classes, per_class=1, size=(36, 36))
    torch.manual_seed(0)
    torch.save(create_model("resnet20", 40, 3, 224).state_dict(), tmp_path / "r20.pt")
    proc = subprocess.run([sys.executable, "-m", "classwise", "evaluate", "--dataset", "imagefolder",
                           "--data-dir", str(tmp_path / "tree"), "--arch", "resnet20", "--checkpoint",
                           str(tmp_path / "r20.pt"), "--steps", "2", "--top-k", "3", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "clean: worst 3:" in proc.stdout and "clean: best 3:" in proc.stdout
    assert "┃" not in proc.stdout  # no per-class table for 40 classes
    worst = proc.stdout.split("clean: worst 3: ")[1].splitlines()[0]
    assert len(worst.split(", ")) == 3 and all(w.split()[0] in classes for w in worst.split(", "))
    assert np.isin([w.split()[0] for w in worst.split(", ")], classes).all()
