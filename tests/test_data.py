import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import write_cifar10, write_cifar100, write_mnist_like, write_svhn

from classwise.data import ClassData, load_dataset, load_raw, per_class_subset, stratified_split
from classwise.data.augment import random_crop, random_hflip
from classwise.errors import CorruptDataError, DatasetNotFoundError


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_files(tmp_path, gz):
    written = write_mnist_like(tmp_path / "fashion-mnist", gz=gz)
    train, test = load_raw("fashion-mnist", tmp_path)
    assert train.images.shape == (30, 1, 28, 28) and train.images.dtype == torch.uint8
    assert np.array_equal(train.images[:, 0].numpy(), written["train"][0])
    assert np.array_equal(test.labels.numpy(), written["test"][1].astype(np.int64))
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"


def test_mnist_in_the_torchvision_folder_layout(tmp_path):
    written = write_mnist_like(tmp_path / "MNIST" / "raw", gz=False, seed=3)
    train, test = load_raw("mnist", tmp_path)
    assert np.array_equal(train.images[:, 0].numpy(), written["train"][0])
    assert train.classes == [str(d) for d in range(10)]


def test_classwise_data_variable_is_searched(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "elsewhere" / "mnist")
    monkeypatch.setenv("CLASSWISE_DATA", str(tmp_path / "nothing") + os.pathsep + str(tmp_path / "elsewhere"))
    train, _ = load_raw("mnist")
    assert len(train) == 30


def test_cifar10_official_python_layout(tmp_path):
    _, names, batches = write_cifar10(tmp_path)
    train, test = load_raw("cifar10", tmp_path)
    assert train.classes == names
    assert train.images.shape == (100, 3, 32, 32)
    first, labels = batches["data_batch_1"]
    # row-major 3072 = 3 planes of 32x32 (R, G, B)
    assert np.array_equal(train.images[0].numpy().reshape(-1), first[0])
    assert train.labels[:20].tolist() == labels
    assert test.labels.tolist() == batches["test_batch"][1]


def test_cifar100_fine_labels_and_superclasses(tmp_path):
    _, fine, coarse, superclass_of, data = write_cifar100(tmp_path)
    train, test = load_raw("cifar100", tmp_path)
    assert train.classes == fine and train.superclasses == coarse
    assert test.labels.tolist() == data["test"][1]
    seen = set(data["train"][1]) | set(data["test"][1])
    assert all(train.superclass_of[c] == superclass_of[c] for c in seen)


def test_svhn_mat_files_and_label_ten_is_zero(tmp_path):
    data = write_svhn(tmp_path / "svhn")
    train, test = load_raw("svhn", tmp_path)
    x, y = data["train"]
    assert train.images.shape == (25, 3, 32, 32)
    assert np.array_equal(train.images[4].numpy(), x[:, :, :, 4].transpose(2, 0, 1))
    expected = y.reshape(-1).astype(np.int64) % 10
    assert train.labels.tolist() == expected.tolist()
    assert 0 in train.labels.tolist() and train.labels.max() <= 9


def test_digits_ship_with_scikit_learn():
    from sklearn.datasets import load_digits

    splits = load_dataset("digits", val_size=0.1)
    total = len(splits.train) + len(splits.val) + len(splits.test)
    assert total == len(load_digits().target) == 1797
    assert splits.train.shape == (1, 8, 8) and int(splits.train.images.max()) == 255


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")
def test_real_fashion_mnist_from_the_debian_package(tmp_path):
    splits = load_dataset("fashion-mnist", tmp_path, val_size=6000)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (54000, 6000, 10000)
    assert splits.val.class_counts().tolist() == [600] * 10
    assert splits.test.class_counts().tolist() == [1000] * 10
    assert splits.train.meta["source"] == "/usr/share/datasets/fashion-mnist"


def test_missing_data_set_names_the_paths_searched(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_raw("cifar10", tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in str(err.value)
    assert "classwise datasets --download cifar10" in str(err.value)


def test_missing_data_set_exits_2_with_one_clear_message(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "classwise", "study", "--dataset", "svhn",
                           "--data-dir", str(tmp_path), "--preset", "smoke", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(tmp_path / "svhn") in proc.stderr and "not found" in proc.stderr


def test_truncated_idx_file_is_reported_as_corrupt(tmp_path):
    write_mnist_like(tmp_path / "mnist", gz=False)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptDataError, match="truncated"):
        load_raw("mnist", tmp_path)
    proc = subprocess.run([sys.executable, "-m", "classwise", "evaluate", "--dataset", "mnist",
                           "--data-dir", str(tmp_path), "--checkpoint", str(tmp_path / "x.pt")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "truncated" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_gzip_is_reported_as_corrupt(tmp_path):
    write_mnist_like(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CorruptDataError):
        load_raw("mnist", tmp_path)


def test_a_cifar_pickle_that_would_run_code_is_refused(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh)
    with pytest.raises(CorruptDataError, match="refusing"):
        load_raw("cifar10", tmp_path)
    assert not marker.exists()


def test_idx_with_a_wrong_dtype_code_is_not_idx(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist_like(folder)
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(b"\x00\x00\x42\x01" + b"\x00" * 10)
    with pytest.raises(CorruptDataError, match="magic"):
        load_raw("mnist", tmp_path)


def _toy(n_per_class=(30, 20, 10)):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(n_per_class)])
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return ClassData(images, labels.long(), ["a", "b", "c"], name="toy")


def test_stratified_split_keeps_class_shares_and_is_disjoint():
    data = _toy()
    train, val = stratified_split(data, 0.2, seed=0)
    assert val.class_counts().tolist() == [6, 4, 2]
    ids = set(train.images[:, 0, 0, 0].tolist()) | set(val.images[:, 0, 0, 0].tolist())
    assert len(ids) == 60 and len(train) + len(val) == 60


def test_per_class_subset_gives_every_class_the_same_count():
    sub = per_class_subset(_toy(), 7, seed=1)
    assert sub.class_counts().tolist() == [7, 7, 7]


def test_classdata_rejects_labels_out_of_range():
    with pytest.raises(CorruptDataError):
        ClassData(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 5]), ["a", "b"])


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    out = random_crop(x, 2, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    g = torch.Generator().manual_seed(0)
    dy, dx = torch.randint(0, 5, (2,), generator=g), torch.randint(0, 5, (2,), generator=g)
    for i in range(2):
        assert torch.equal(out[i], padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8])
    assert torch.equal(random_crop(x, 0, g), x)


def test_random_hflip_flips_about_half_and_nothing_else():
    x = torch.rand(400, 1, 4, 4)
    out = random_hflip(x, torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(3)).flatten(1).all(1)
    assert (same | flipped).all()
    assert 150 < int(flipped.sum()) < 250
