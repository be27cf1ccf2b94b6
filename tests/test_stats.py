"""The study's statistics against known answers: coverage of the bootstrap on simulated
per-class data with a known difference, McNemar against statsmodels, verdicts, and the
seed bootstrap's mean ± std against numpy."""

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from classwise.analysis.seeds import Evaluation, SeedBootstrap
from classwise.analysis.stats import (
    bootstrap_class_accuracy,
    class_stats,
    mcnemar_exact,
    mcnemar_per_class,
    percentile_interval,
    verdict,
    weakest_probability,
)
from classwise.report.sentences import change_sentence


def _paired_arms(rng, p_a, p_b, per_class):
    """Two arms on the same images: a shared difficulty u per image makes them correlated, as
    two models evaluated on the same test set are; P(a right) = p_a[c], P(b right) = p_b[c]."""
    labels = np.repeat(np.arange(len(p_a)), per_class)
    u = rng.random(labels.size)
    return labels, np.stack([u < p_a[labels], u < p_b[labels]])


def test_bootstrap_interval_of_a_class_mean_difference_covers_the_truth_at_the_nominal_rate():
    rng = np.random.default_rng(1)
    p_a = np.linspace(0.45, 0.9, 10)
    p_b = p_a - np.linspace(0.0, 0.12, 10)  # arm b loses more on the strong classes
    truth = float(np.mean(p_b - p_a))
    sims, covered = 500, 0
    for _ in range(sims):
        labels, correct = _paired_arms(rng, p_a, p_b, per_class=100)
        acc = bootstrap_class_accuracy(labels, correct, 10, resamples=1000, rng=rng)
        diff = class_stats(acc[:, 1])["mean"] - class_stats(acc[:, 0])["mean"]
        low, high = percentile_interval(diff)
        covered += low <= truth <= high
    assert covered / sims >= 0.93
    assert covered / sims <= 0.99  # not an interval wide enough to cover anything


def test_unpaired_resampling_would_be_too_wide_for_paired_arms():
    """Pairing is what makes the interval of a difference tight: resampling the two arms
    independently gives a visibly wider interval on the same data."""
    rng = np.random.default_rng(2)
    p = np.linspace(0.5, 0.9, 10)
    labels, correct = _paired_arms(rng, p, p - 0.05, per_class=200)
    paired = bootstrap_class_accuracy(labels, correct, 10, resamples=2000, rng=0)
    d_paired = class_stats(paired[:, 1])["mean"] - class_stats(paired[:, 0])["mean"]
    a = bootstrap_class_accuracy(labels, correct[:1], 10, resamples=2000, rng=1)[:, 0]
    b = bootstrap_class_accuracy(labels, correct[1:], 10, resamples=2000, rng=2)[:, 0]
    d_unpaired = class_stats(b)["mean"] - class_stats(a)["mean"]
    assert np.std(d_paired) < 0.6 * np.std(d_unpaired)


def test_bootstrap_is_stratified_and_binomial_within_a_class():
    labels = np.repeat([0, 1, 2], [50, 200, 10])
    correct = np.zeros((1, labels.size), bool)
    correct[0, :30] = True  # class 0: 30 of 50
    correct[0, 50:250] = True  # class 1: all right
    acc = bootstrap_class_accuracy(labels, correct, 4, resamples=4000, rng=0)[:, 0]
    assert np.all(acc[:, 1] == 1.0) and np.all(acc[:, 2] == 0.0)  # class sizes kept: no class leaks into another
    assert np.isnan(acc[:, 3]).all()  # a class without images
    assert acc[:, 0].mean() == pytest.approx(0.6, abs=0.005)
    assert acc[:, 0].var() == pytest.approx(0.6 * 0.4 / 50, rel=0.1)  # a resample of n_c images is binomial
    assert np.allclose(acc[:, 0] * 50, np.round(acc[:, 0] * 50))  # whole images


def test_mcnemar_agrees_with_statsmodels_exact():
    rng = np.random.default_rng(3)
    for only_a, only_b, both, neither in [(7, 1, 40, 2), (0, 0, 10, 5), (12, 12, 3, 3), (0, 9, 0, 0), (30, 41, 5, 1)]:
        a = np.r_[np.ones(only_a + both, bool), np.zeros(only_b + neither, bool)]
        b = np.r_[np.zeros(only_a, bool), np.ones(both + only_b, bool), np.zeros(neither, bool)]
        order = rng.permutation(a.size)
        ours = mcnemar_exact(a[order], b[order])
        ref = mcnemar([[both, only_a], [only_b, neither]], exact=True)
        assert (ours["only_a"], ours["only_b"]) == (only_a, only_b)
        assert ours["p_value"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_mcnemar_per_class_tests_each_class_on_its_own_images():
    labels = np.array([0] * 10 + [1] * 10)
    a = np.r_[np.ones(10, bool), np.ones(10, bool)]
    b = np.r_[np.zeros(10, bool), np.ones(10, bool)]
    t = mcnemar_per_class(labels, a, b, ["x", "y"])
    assert t.loc[0, "only_a"] == 10 and t.loc[0, "p_value"] == pytest.approx(mcnemar([[0, 10], [0, 0]]).pvalue)
    assert t.loc[1, "p_value"] == 1.0


def test_a_difference_of_zero_is_no_clear_difference():
    rng = np.random.default_rng(4)
    labels, correct = _paired_arms(rng, np.full(10, 0.7), np.full(10, 0.7), per_class=100)
    acc = bootstrap_class_accuracy(labels, correct, 10, resamples=1000, rng=0)
    d = class_stats(acc[:, 1])["std"] - class_stats(acc[:, 0])["std"]
    low, high = percentile_interval(d)
    assert low == high == 0.0  # identical arms: every paired resample agrees
    assert verdict(low, high) == "no clear difference"
    assert change_sentence("std", 0.08, 0.08, low, high).startswith("no clear difference: std 8.0 → 8.0 points")
    boot = SeedBootstrap([Evaluation("a", 0, labels, {"robust": correct[0]}),
                          Evaluation("b", 0, labels, {"robust": correct[0].copy()})], [str(c) for c in range(10)])
    for stat, v in boot.difference("a", "b", "robust").items():
        assert v["difference"] == 0 and v["low"] == v["high"] == 0, stat
        assert verdict(v["low"], v["high"]) == "no clear difference"


def test_verdict_sentences():
    assert change_sentence("std", 0.080, 0.161, 0.069, 0.094) == \
        "widens: std 8.0 → 16.1 points, difference +8.1 [+6.9, +9.4]"
    assert change_sentence("std", 0.16, 0.08, -0.1, -0.05).startswith("narrows:")
    assert verdict(-0.01, 0.02) == "no clear difference"
    assert verdict(0.001, 0.02, up="raises") == "raises"


def test_weakest_probability_splits_ties():
    acc = np.array([[0.1, 0.5, 0.9], [0.4, 0.4, 0.9], [0.6, 0.2, 0.3], [0.3, 0.3, 0.3]])
    np.testing.assert_allclose(weakest_probability(acc), [(1 + 0.5 + 0 + 1 / 3) / 4, (0 + 0.5 + 1 + 1 / 3) / 4,
                                                          (1 / 3) / 4])


def test_seed_bootstrap_mean_std_and_weakest_over_seeds():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(3), 40)
    runs = {s: rng.random(labels.size) < np.array([0.3, 0.6, 0.9])[labels] for s in (0, 1, 2)}
    boot = SeedBootstrap([Evaluation("arm", s, labels, {"clean": c}) for s, c in runs.items()], ["a", "b", "c"],
                         resamples=500, rng=0)
    per_seed = np.array([[c[labels == k].mean() for k in range(3)] for c in runs.values()])
    t = boot.per_class("arm", "clean")
    np.testing.assert_allclose(t["mean"], per_seed.mean(0))
    np.testing.assert_allclose(t["std"], per_seed.std(0, ddof=1))
    assert (t["ci_low"] <= t["mean"]).all() and (t["mean"] <= t["ci_high"]).all()
    s = boot.summary("arm", "clean")
    assert s["mean"]["estimate"] == pytest.approx(per_seed.mean(0).mean())
    assert s["worst"]["estimate"] == pytest.approx(per_seed.mean(0).min())
    p = boot.weakest("arm", "clean")
    assert sum(p.values()) == pytest.approx(1) and p["a"] > 0.95
    # seeds are resampled too: a seed-level shift widens the interval of the mean
    shifted = {s: c & (rng.random(labels.size) < (0.5 if s == 0 else 1.0)) for s, c in runs.items()}
    wide = SeedBootstrap([Evaluation("arm", s, labels, {"clean": c}) for s, c in shifted.items()], ["a", "b", "c"],
                         resamples=500, rng=0).summary("arm", "clean")["mean"]
    assert wide["high"] - wide["low"] > 1.5 * (s["mean"]["high"] - s["mean"]["low"])


def test_seed_bootstrap_with_different_test_images_per_seed():
    """A test subset drawn per seed: each seed's images are resampled on their own."""
    rng = np.random.default_rng(6)
    evals = []
    for s in (0, 1):
        labels = rng.permutation(np.repeat(np.arange(2), 30))
        evals += [Evaluation(k, s, labels, {"robust": rng.random(60) < 0.5}) for k in ("a", "b")]
    boot = SeedBootstrap(evals, ["x", "y"], resamples=200, rng=0)
    d = boot.difference("a", "b", "robust")["mean"]
    assert d["low"] <= d["difference"] <= d["high"]
