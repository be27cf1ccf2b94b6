"""Explain with known answers: a model built to send one class into another yields that flow;
Kendall's W and Spearman agree with scipy; cosine similarity of hand-made mean logits; the
superclass share on a synthetic CIFAR-100 in the official layout; the factor answer."""

import json

import numpy as np
import pytest
import torch
from datafiles import write_cifar100
from scipy import stats

import classwise as cw
from classwise.analysis import agreement, flow, similarity, superclass
from classwise.analysis.explain import Run, explain, superclasses_for
from classwise.cli import main
from classwise.data import ClassData, load_raw
from classwise.report.sentences import factor_sentence
from classwise.study.stored_runs import find_runs

# image brightness of each class; the model predicts the nearest centre. Class 3 sits 0.025
# from the 3/4 boundary, class 4 0.055 from it, the others >= 0.1 from any boundary: an
# attack of eps 0.04 sends class 3 into 4 and nothing else anywhere.
LEVELS = np.array([0.05, 0.25, 0.45, 0.55, 0.655, 0.85])
CENTRES = np.array([0.05, 0.25, 0.45, 0.55, 0.6, 0.85])


class Brightness(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(1, 1)  # the last nn.Linear: its input is the "feature"
        with torch.no_grad():
            self.head.weight.fill_(1.0)
            self.head.bias.zero_()

    def forward(self, x):
        m = self.head(x.mean((1, 2, 3))[:, None])
        return -((m - torch.as_tensor(CENTRES, dtype=x.dtype)) ** 2) * 1000


def _flow_data():
    n_per = 20
    labels = torch.arange(len(LEVELS)).repeat_interleave(n_per)
    x = torch.as_tensor(LEVELS, dtype=torch.float32)[labels].view(-1, 1, 1, 1).expand(-1, 1, 4, 4).contiguous()
    return ClassData(x, labels, [f"c{i}" for i in range(len(LEVELS))], name="brightness")


def test_a_model_built_to_send_a_into_b_yields_that_flow(tmp_path):
    data = _flow_data()
    res = cw.evaluate(Brightness(), data, [cw.AttackSpec(eps=0.04, steps=10)], batch_size=64, show_progress=False)
    assert res.accuracy() == 1.0
    fl = flow.adversarial_flow(res.labels, res.clean_pred, res.preds("pgd10"), 6)
    assert fl[3, 4] == 20 and fl[3, 3] == 0  # every image of class 3 went to 4
    assert np.trace(fl) == 100 and fl.sum() == 120  # every other class survived
    share = flow.fooled_share(fl)
    assert share[3, 4] == 1.0 and share.sum() == 1.0
    top = flow.top_flows(fl, data.classes)
    assert top == [{"true": "c3", "pred": "c4", "count": 20, "share_of_errors": 1.0, "share_of_class": 1.0}]
    assert flow.symmetry(fl) == 0.0  # all one way
    assert flow.symmetry(np.array([[5, 2], [2, 5]])) == 1.0
    # end to end: an evaluate --out folder, explained by the command
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "eval.json").write_text(json.dumps(res.to_dict()))
    assert main(["explain", str(tmp_path / "ev"), "--quiet"]) == 0
    out = json.loads((tmp_path / "ev" / "explain" / "explain.json").read_text())
    assert "100% of fooled c3 images become c4 (20 images)" in " ".join(out["answers"])
    assert (tmp_path / "ev" / "explain" / "explain.html").stat().st_size > 1000
    assert "features" in res.class_sums["pgd10"]  # the hook on the last Linear collected its input
    # the feature sums are the brightness itself: clean class means equal LEVELS
    np.testing.assert_allclose(res.class_mean("clean", "features")[:, 0], LEVELS, atol=1e-6)
    adv = res.class_mean("pgd10", "features")[:, 0]
    assert adv[3] > 0.575 and np.allclose(np.delete(adv, 3), np.delete(LEVELS, 3), atol=0.041)


def test_clusters_join_mutually_confused_classes():
    m = np.diag([90, 90, 90, 90, 100])
    m[0, 1], m[1, 0], m[2, 3] = 10, 8, 10
    assert flow.clusters(m, list("abcde")) == [["a", "b"], ["c", "d"]]


FIXED = np.array([[0.9, 0.5, 0.7, 0.2, 0.6],
                  [0.8, 0.4, 0.7, 0.1, 0.5],
                  [0.6, 0.6, 0.9, 0.3, 0.4],
                  [0.9, 0.3, 0.5, 0.3, 0.7]])  # 4 runs x 5 classes, with ties in the last two rows


@pytest.mark.parametrize("scores", [FIXED[:2], FIXED, FIXED[[0, 1, 3]]])
def test_kendall_w_agrees_with_friedman(scores):
    w = agreement.kendall_w(scores)
    m, n = scores.shape
    chi2, p = stats.friedmanchisquare(*scores.T) if m >= 3 else (None, None)
    if chi2 is not None:
        assert w.w == pytest.approx(chi2 / (m * (n - 1)), rel=1e-10)
        assert w.p == pytest.approx(p, rel=1e-8)
    # by hand, no ties: two runs, ranks [5,2,4,1,3] and [5,2,4,1,3]: perfect agreement
    if m == 2:
        assert w.w == pytest.approx(1.0)


def test_spearman_matrix_agrees_with_scipy():
    rho = agreement.spearman_matrix(FIXED)
    want = stats.spearmanr(FIXED.T).statistic
    np.testing.assert_allclose(rho, want, atol=1e-12)
    overlap = agreement.topk_overlap(FIXED, 2)
    # weakest two: run0 {3,1}, run1 {3,1}, run2 {3,4}, run3 {1,3} (tie 0.3: lower index first)
    assert overlap[0, 1] == 1.0 and overlap[0, 2] == 0.5 and overlap[0, 3] == 1.0
    assert agreement.always_weak(FIXED, 2) == [3]


def test_the_factor_answer_names_the_factor_that_reorders_the_classes():
    base = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    scores = np.array([base, base + 0.01, base[::-1], base[::-1] + 0.02])  # arch A, A, B, B
    rho = agreement.spearman_matrix(scores)
    arch = agreement.factor_agreement(rho, ["A", "A", "B", "B"], "architecture")
    opt = agreement.factor_agreement(rho, ["sgd", "adam", "sgd", "adam"], "optimisation")
    assert arch.within == pytest.approx(1.0) and arch.across == pytest.approx(-1.0) and arch.depends
    # same optimiser means different architecture here: agreement is lower, not higher, within
    assert opt.within == pytest.approx(-1.0) and opt.across == pytest.approx(0.0) and not opt.depends
    assert "DEPEND on the architecture" in factor_sentence(arch, "clean")


def test_cosine_similarity_of_hand_made_mean_logits():
    counts = np.array([2, 1, 4])
    means = np.array([[3.0, 4.0, 0.0], [4.0, 3.0, 0.0], [0.0, 0.0, 1.0]])
    labels = np.repeat(np.arange(3), counts)
    got = similarity.cosine_matrix(similarity.class_means(means * counts[:, None], labels, 3))
    np.testing.assert_allclose(got, [[1, 24 / 25, 0], [24 / 25, 1, 0], [0, 0, 1]], atol=1e-12)
    idx, val = similarity.nearest(got)
    assert idx.tolist()[:2] == [1, 0] and val[:2] == pytest.approx([0.96, 0.96]) and val[2] == pytest.approx(0)
    # through a stored evaluation: the explain pass reads the same numbers from class sums
    sums = {"clean": {"logits": means * counts[:, None]}}
    res = cw.EvalResult(["a", "b", "c"], labels, labels.copy(), class_sums=sums)
    out = explain([Run("r", None, res)])["runs"][0]["similarity"]["clean logits"]
    assert out["nearest"] == ["b", "a", "a"] and out["nearest_similarity"][0] == pytest.approx(0.96)
    err = [0.3, 0.1, 0.2, 0.5, 0.4]
    c = similarity.rank_correlation([1, 2, 3, 4, 5], err)
    ref = stats.spearmanr([1, 2, 3, 4, 5], err)
    assert c.rho == pytest.approx(ref.statistic) and c.p == pytest.approx(ref.pvalue)


def test_superclass_share_on_a_synthetic_cifar100(tmp_path):
    write_cifar100(tmp_path, n_train=20, n_test=1500, seed=3)
    test = load_raw("cifar100", tmp_path)[1]
    sup = np.asarray(test.superclass_of)
    assert (sup >= 0).all()
    y = test.labels.numpy()
    rng = np.random.default_rng(0)
    pred = y.copy()
    wrong = np.flatnonzero(rng.random(len(y)) < 0.4)
    inside = wrong[: len(wrong) // 4]  # a quarter of the errors stay in the superclass
    for i in wrong:
        same = [c for c in range(100) if sup[c] == sup[y[i]] and c != y[i]]
        other = [c for c in range(100) if sup[c] != sup[y[i]]]
        pred[i] = rng.choice(same) if i in set(inside) else rng.choice(other)
    share = superclass.within_superclass(y, pred, sup.tolist())
    assert share.errors == len(wrong) and share.within == len(inside)
    assert share.chance == pytest.approx(4 / 99)
    assert share.p < 1e-6
    table = superclass.superclass_table(y, pred, sup.tolist(), test.superclasses)
    assert sum(t["n"] for t in table) == len(y)
    s0 = sup[y] == 0
    assert table[0]["accuracy"] == pytest.approx((pred[s0] == y[s0]).mean())
    # the explain pass finds the superclasses from the run's data set
    res = cw.EvalResult(list(test.classes), y, pred)
    runs = [Run("r", tmp_path, res, {"dataset": "cifar100"})]
    sc = superclasses_for(runs, tmp_path)
    assert sc is not None and sc[1] == sup.tolist()
    out = explain(runs, sc)["runs"][0]["superclass"]
    assert out["clean"]["share"] == pytest.approx(len(inside) / len(wrong))


def test_find_runs_reads_arm_folders(tmp_path):
    labels = np.array([0, 1, 1, 0])
    for arm, pred in (("standard", [0, 1, 0, 0]), ("fgsm-rs", [1, 1, 1, 0])):
        (tmp_path / arm).mkdir()
        res = cw.EvalResult(["a", "b"], labels, np.asarray(pred))
        (tmp_path / arm / "eval.json").write_text(json.dumps(res.to_dict()))
    runs = find_runs(tmp_path)
    assert sorted(r.name for r in runs) == ["fgsm-rs", "standard"]
    summary = explain(runs)
    assert summary["agreement"]["metrics"]["clean"]["kendall_w"]["m"] == 2
