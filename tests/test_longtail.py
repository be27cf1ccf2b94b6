"""Long-tailed data (Cao et al.'s CIFAR-10-LT profile) and the long-tail methods on it: the
training counts follow n_k = int(n_max rho^(-k/(C-1))), the validation and test sets stay
balanced, and class-balanced / LDAM-DRW take the real counts there and the class difficulty on
balanced data."""

import numpy as np
import pytest
import torch
from datafiles import write_cifar10

from classwise.config import TrainConfig
from classwise.data import load_dataset
from classwise.data.longtail import long_tail_counts
from classwise.errors import ClasswiseError
from classwise.evaluation import EvalResult
from classwise.training.trainer import objective_for


def test_cao_profile():
    # Cao et al.'s CIFAR-10-LT at imbalance 100 (their get_img_num_per_cls, imb_factor 0.01)
    assert long_tail_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert long_tail_counts(500, 100, 100)[::33] == [500, 107, 23, 5]  # 500 / 100^(1/3) = 107.7
    assert long_tail_counts(7, 10, 1) == [7] * 10


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=400, n_test=50)  # 200 images a class
    return root


def test_cifar10_lt_cuts_the_training_set_only(cifar):
    splits = load_dataset("cifar10-lt", cifar, val_size=0.1, seed=3)
    train = torch.bincount(splits.train.labels, minlength=10).tolist()
    assert train == long_tail_counts(180, 10, 100)  # 180 a class after the balanced validation split
    assert torch.bincount(splits.val.labels).tolist() == [20] * 10
    assert torch.bincount(splits.test.labels).tolist() == [5] * 10
    assert splits.train.meta["imbalance"] == 100
    # --imbalance: any ratio, on any data set; the same seed picks the same images
    mild = load_dataset("cifar10", cifar, val_size=0.1, seed=3, imbalance=10)
    assert torch.bincount(mild.train.labels).tolist() == long_tail_counts(180, 10, 10)
    again = load_dataset("cifar10", cifar, val_size=0.1, seed=3, imbalance=10)
    assert torch.equal(mild.train.images, again.train.images)
    with pytest.raises(ClasswiseError, match="keeps no image"):
        load_dataset("cifar10", cifar, val_size=0.1, seed=3, imbalance=1000)


def _val(accuracy, key="pgd10"):
    """10 validation images a class, the first round(10 a_k) right under attack."""
    labels = np.repeat(np.arange(10), 10)
    adv = labels.copy()
    for k, a in enumerate(accuracy):
        adv[np.flatnonzero(labels == k)[round(10 * a):]] = (k + 1) % 10
    return EvalResult([str(k) for k in range(10)], labels, labels.copy(), {key: adv})


@pytest.mark.parametrize("method", ["class-balanced", "ldam-drw"])
def test_long_tail_methods_take_real_counts_on_long_tailed_data(cifar, method):
    cfg = TrainConfig(dataset="cifar10-lt", method=method).resolved(grey=False)
    lt = load_dataset("cifar10-lt", cifar, val_size=0.1, seed=3)
    obj = objective_for(cfg, lt.train)
    before = obj.state_dict()["counts"].clone()
    assert before.tolist() == long_tail_counts(180, 10, 100)
    obj.end_epoch(1, _val([0.1] * 5 + [0.9] * 5), "pgd10")
    assert torch.equal(obj.state_dict()["counts"], before)  # the data's counts stand
    balanced = load_dataset("cifar10", cifar, val_size=0.1, seed=3)
    obj = objective_for(cfg.model_copy(update={"dataset": "cifar10"}), balanced.train)
    obj.end_epoch(1, _val([0.1] * 5 + [0.9] * 5), "pgd10")
    counts = obj.state_dict()["counts"]
    assert counts[0] < counts[9]  # balanced: the weak classes count as rare
