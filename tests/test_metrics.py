import math

import numpy as np
import pytest
from scipy.stats import binomtest

from classwise.metrics import confusion_matrix, disparity, per_class_table, wilson_interval


def test_per_class_metrics_match_a_hand_built_confusion_matrix():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    preds = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 2, 2, 1])
    expected = np.array([[2, 1, 1],
                         [1, 2, 0],
                         [0, 1, 4]])
    assert (confusion_matrix(labels, preds, 3) == expected).all()
    table = per_class_table(labels, preds, ["a", "b", "c"])
    assert table["n"].tolist() == [4, 3, 5]
    assert table["correct"].tolist() == [2, 2, 4]
    assert np.allclose(table["accuracy"], [2 / 4, 2 / 3, 4 / 5])
    assert ((table["ci_low"] < table["accuracy"]) & (table["accuracy"] < table["ci_high"])).all()


def test_class_without_examples_is_nan_and_left_out_of_disparity():
    table = per_class_table(np.array([0, 0, 1]), np.array([0, 1, 1]), ["a", "b", "c"])
    assert math.isnan(table["accuracy"][2])
    d = disparity(table["accuracy"], table["class"])
    assert d["mean"] == pytest.approx(0.75)
    assert d["worst_class"] == "a" and d["best_class"] == "b"


@pytest.mark.parametrize("k,n", [(8, 10), (0, 20), (20, 20), (37, 45), (1, 1000)])
def test_wilson_interval_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_interval_holds_the_proportion_exactly():
    """Figures draw accuracy - low as an error bar, which must not be negative, not even by 1e-17."""
    n = np.repeat(np.arange(1, 1201), 2)
    k = np.where(np.arange(len(n)) % 2 == 0, 0, n)  # the edges, where rounding bites
    low, high = wilson_interval(k, n)
    assert (k / n - low >= 0).all() and (high - k / n >= 0).all()
    assert (low[k == 0] == 0).all() and (high[k == n] == 1).all()


def test_wilson_interval_edges():
    assert wilson_interval(0, 20)[0] == pytest.approx(0, abs=1e-12)
    assert wilson_interval(20, 20)[1] == pytest.approx(1)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_disparity_summary():
    d = disparity([0.9, 0.5, 0.7, 0.6], ["w", "x", "y", "z"])
    assert d["mean"] == pytest.approx(0.675)
    assert d["std"] == pytest.approx(np.std([0.9, 0.5, 0.7, 0.6]))
    assert d["gap"] == pytest.approx(0.4)
    assert (d["worst_class"], d["worst"]) == ("x", 0.5)
    assert (d["best_class"], d["best"]) == ("w", 0.9)
