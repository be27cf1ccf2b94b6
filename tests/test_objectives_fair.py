"""The published fair adversarial training objectives (FRL, FAT, CFA, WAT, DAFA): their
update rules against hand computation on tiny tensors, and their state through a resume."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from classwise import load_dataset
from classwise.config import TrainConfig
from classwise.evaluation.result import EvalResult
from classwise.training import train
from classwise.training.objectives import OBJECTIVES, Step
from classwise.training.objectives.lee2024_dafa import dafa_weights
from classwise.training.objectives.li2023_wat import hedge_weights, wat_costs
from classwise.training.objectives.ma2022_fat_var import class_loss_variance
from classwise.training.objectives.wei2023_cfa import class_beta, class_eps, fawa_update
from classwise.training.objectives.xu2021_frl import frl_errors, frl_update, frl_weights, project
from classwise.training.trainer import CHECKPOINT, FINAL


def _val(per_class_clean_wrong, per_class_robust_right, n=10, key="pgd"):
    """An EvalResult with n images a class: the first `wrong` of a class misclassified clean,
    the first `right` correct under attack (robust implies clean-correct, as in evaluate)."""
    c = len(per_class_clean_wrong)
    labels = np.repeat(np.arange(c), n)
    clean, adv = labels.copy(), labels.copy()
    for k in range(c):
        rows = np.arange(k * n, (k + 1) * n)
        other = (k + 1) % c
        clean[rows[:per_class_clean_wrong[k]]] = other
        adv[rows[per_class_robust_right[k]:]] = other
    return EvalResult([str(k) for k in range(c)], labels, clean, {key: adv})


def _objective(name, **params):
    cfg = TrainConfig(method=name, method_params=params).resolved(grey=True)
    return OBJECTIVES[name](cfg, ["a", "b", "c"], torch.full((3,), 10))


def _key(objective):
    """The result key of the objective's own validation attack."""
    return objective.validation_attacks()[0].label


def test_frl_multipliers_weights_and_margins_by_hand():
    # clean errors .1 .3 .2 (overall .2); boundary errors .9-.7, .7-.2, .8-.6 = .2 .5 .2 (overall .8-.5 = .3)
    frl = _objective("frl")
    val = _val([1, 3, 2], [7, 2, 6], key=_key(frl))
    clean_err, bndy_err, total_clean, total_bndy = frl_errors(val, _key(frl))
    assert torch.allclose(clean_err, torch.tensor([.1, .3, .2], dtype=torch.float64))
    assert torch.allclose(bndy_err, torch.tensor([.2, .5, .2], dtype=torch.float64))
    assert total_clean == pytest.approx(.2) and total_bndy == pytest.approx(.3)

    frl.end_epoch(1, val, None)
    # g0 = [-.17, .03, -.07] -> l0 = clip(.05 g0) = [0, .0015, 0]; g1 = [-.17, .13, -.17] -> l1 = clip(.1 g1),
    # l2 = .2 g1 (not clipped)
    expected = torch.tensor([0, .0015, 0, 0, .013, 0, -.034, .026, -.034], dtype=torch.float64)
    assert torch.allclose(frl.lmbda, expected)
    w0, w1, m = frl_weights(frl.lmbda)
    assert torch.allclose(w0, torch.tensor([1 / 3 - .0005, 1 / 3 + .001, 1 / 3 - .0005], dtype=torch.float64))
    assert torch.allclose(w1, torch.tensor([1 / 3 - .013 / 3, 1 / 3 + .013 * 2 / 3, 1 / 3 - .013 / 3],
                                           dtype=torch.float64))
    assert torch.allclose(m, torch.tensor([.98, math.exp(.052), .98], dtype=torch.float64))  # exp(-.068) < .98

    # the projection onto {l >= 0, sum l <= lim}: clip, then rescale
    assert torch.allclose(project(torch.tensor([.6, -.1, .4]), .5), torch.tensor([.3, 0, .2]))
    assert torch.allclose(project(torch.tensor([.1, -.1, .2]), .5), torch.tensor([.1, 0, .2]))
    # a second step accumulates (and the boundary step is twice the clean one)
    again = frl_update(frl.lmbda, clean_err, bndy_err, total_clean, total_bndy, tau=.07, rate_weight=.05,
                       rate_margin=.2, lim=.5)
    assert torch.allclose(again, torch.tensor([0, .003, 0, 0, .026, 0, -.068, .052, -.068], dtype=torch.float64))
    remargin_only = _objective("frl", mode="remargin")
    remargin_only.end_epoch(1, val, None)
    assert torch.allclose(remargin_only.lmbda[:6], torch.zeros(6, dtype=torch.float64))


def test_fat_variance_term_by_hand():
    per_image = torch.tensor([1., 3., 2., 4., 6.])
    y = torch.tensor([0, 0, 1, 2, 2])
    # class means 2, 2, 5 (class 3 absent): mean 3, squared deviations 1, 1, 4 -> unbiased variance 6/2
    assert class_loss_variance(per_image, y, 4).item() == pytest.approx(3.0)
    assert class_loss_variance(per_image[:2], y[:2], 4).item() == 0.0  # one class: no variance


def test_cfa_class_eps_beta_and_the_crafted_margins():
    t = torch.tensor([.2, .5, .9], dtype=torch.float64)
    assert torch.allclose(class_eps(t, .5, .1), torch.tensor([.07, .1, .14], dtype=torch.float64))
    assert torch.allclose(class_beta(t, .5, 6.), torch.tensor([4.2 / 5.2, 6 / 7, 8.4 / 9.4], dtype=torch.float64))

    cfa = _objective("cfa", base="pgd", begin=1)
    logits = torch.tensor([[5., 0, 0], [0, 5., 0], [0, 0, 5.], [5., 0, 0], [0, 5., 0]])
    cfa._count(logits, torch.tensor([0, 0, 2, 1, 1]))  # right: 1 of class 0, 1 of class 1, 1 of class 2
    cfa.end_epoch(1, _val([0, 0, 0], [10, 10, 10], key=_key(cfa)), "pgd")
    # their CW_log: C correct_k / N (N the epoch's 5 images), not correct_k / n_k
    assert torch.allclose(cfa.t, torch.tensor([.6, .6, .6], dtype=torch.float64))

    seen = {}

    def craft(x, y, eps=None, alpha=None, **kw):
        seen["eps"], seen["alpha"] = eps, alpha
        return x

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 2])
    for epoch, expected in ((1, None), (2, torch.tensor([.11, .11, .11]))):  # eps 0.1: (0.5 + t) * 0.1
        cfa.loss(Step(model, x, y, craft, epoch))
        assert (seen["eps"] is None) if expected is None else torch.allclose(seen["eps"], expected)
        assert seen["alpha"] is None and cfa.cfg.attack_alpha == pytest.approx(.1 / 4)  # the run's fixed step


def test_cfa_fawa_averages_only_the_epochs_that_pass():
    w = [{"a": torch.tensor([v]), "n": torch.tensor(i)} for i, v in enumerate([1., 2., 4., 10.])]
    avg = fawa_update(None, w[0], worst=.1, threshold=.24, decay=.88)
    assert avg is None
    avg = fawa_update(avg, w[1], worst=.3, threshold=.24, decay=.88)  # the first passing epoch is copied
    assert avg["a"].item() == 2.0
    avg = fawa_update(avg, w[2], worst=.2, threshold=.24, decay=.88)  # fails: unchanged
    assert avg["a"].item() == 2.0
    avg = fawa_update(avg, w[3], worst=.24, threshold=.24, decay=.88)
    assert avg["a"].item() == pytest.approx(.88 * 2 + .12 * 10) and avg["n"].item() == 3  # ints are copied

    # through the objective: the model of the last step, the worst class of the validation pass
    cfa = _objective("cfa")
    model = nn.Linear(2, 1, bias=False)
    for weight, robust_right in ((1., [1, 9, 9]), (3., [3, 9, 9]), (5., [9, 9, 9])):
        nn.init.constant_(model.weight, weight)
        cfa.after_step(model)
        cfa.end_epoch(1, _val([0, 0, 0], robust_right, key=_key(cfa)), _key(cfa))
    assert cfa.fawa_epochs == 2 and cfa.final_weights(model)["weight"][0, 0].item() == pytest.approx(.88 * 3 + .12 * 5)


def test_wat_hedge_weights_by_hand():
    # 10 images a class read in batches of 128: one batch, so the costs divide by 128 (their
    # iterations x batch size), each class's sum times C, the average's sum alone
    clean, kl = np.array([1., 2., 3.]), np.array([.5, .5, 2.])
    sums = clean + 6 * kl
    assert torch.allclose(wat_costs(clean, kl, 30, 128, 6.), torch.tensor([*(3 * sums / 128), sums.sum() / 128],
                                                                          dtype=torch.float64))
    assert torch.allclose(wat_costs(clean, kl, 300, 128, 6.)[:3], torch.tensor(3 * sums / 384, dtype=torch.float64))

    wat = _objective("wat")
    assert torch.equal(wat.weights, torch.ones(4, dtype=torch.float64))  # theirs start at 1
    val = _val([0, 0, 0], [10, 10, 10], key=_key(wat))
    val.class_sums = {"clean": {"loss": clean}, _key(wat): {"kl": kl, "loss": clean}}
    wat.end_epoch(1, val, "pgd")
    wat.end_epoch(2, val, "pgd")
    cum = 2 * wat_costs(clean, kl, 30, wat.cfg.batch_size, 6.)
    e = [math.exp(.1 * c) for c in cum.tolist()]
    assert torch.allclose(wat.weights, torch.tensor([3 * v / sum(e) for v in e], dtype=torch.float64))
    assert torch.allclose(hedge_weights(cum, .1), wat.weights)

    # weights of 1: each image's loss counted once for its class and once for the average
    fresh = _objective("wat", base="pgd")
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 1])
    loss, logits = fresh.loss(Step(model, x, y, lambda x, y, **kw: x, 1))
    assert loss.item() == pytest.approx(2 * nn.functional.cross_entropy(logits, y).item(), rel=1e-6)


def test_dafa_weight_matrix_by_hand():
    p = np.array([[.6, .3, .1], [.2, .7, .1], [.05, .05, .9]])
    # class 0 is harder than 1 and 2: 1 + .3 * .7 + .1 * .9; class 1 easier than 0, harder than 2:
    # 1 - .3 * .7 + .1 * .9; class 2 easier than both: 1 - .1 * .9 - .1 * .9
    assert torch.allclose(dafa_weights(p, 1.0), torch.tensor([1.30, .88, .82], dtype=torch.float64))
    assert torch.allclose(dafa_weights(p, 2.0), torch.tensor([1.60, .76, .64], dtype=torch.float64))

    # the last warm-up epoch's training batches: their mean train-mode adversarial softmax per class
    dafa = _objective("dafa", warmup=2)
    y = torch.tensor([0, 1, 2])
    logits = torch.tensor(np.log(p), dtype=torch.float32)  # softmax gives p back, row by row
    dafa._record(logits, y)
    dafa.end_epoch(1, None, "pgd")
    assert torch.equal(dafa.weights, torch.ones(3, dtype=torch.float64))  # nothing before the warm-up's end
    dafa.end_epoch(2, None, "pgd")
    assert torch.allclose(dafa.weights, torch.tensor([1.30, .88, .82], dtype=torch.float64))
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    fresh = _objective("dafa", warmup=2)
    fresh.loss(Step(model, torch.rand(3, 1, 2, 2), y, lambda x, y, **kw: x, 2))  # the warm-up's last epoch records
    assert fresh._counts.tolist() == [1, 1, 1]

    seen = {}

    def craft(x, y, eps=None, alpha=None, **kw):
        seen["eps"], seen["alpha"] = eps, alpha
        return x

    trades_dafa = _objective("dafa", warmup=2)
    trades_dafa.weights = dafa.weights
    trades_dafa.loss(Step(model, torch.rand(2, 1, 2, 2), torch.tensor([0, 2]), craft, 3))
    assert torch.allclose(seen["eps"], torch.tensor([.13, .082]))
    assert torch.allclose(seen["alpha"], seen["eps"] * .007 / .031)  # their 0.007 at 0.031, scaled by W


class _Killed(Exception):
    pass


def _kill_after_first_epoch(rec):
    if rec["epoch"] == 1:
        raise _Killed


FAIR = {"frl": {}, "fat-var": {}, "cfa": {"begin": 1, "threshold": 0.0}, "wat": {}, "dafa": {"warmup": 1}}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def one_thread():
    # 8x8 images: a second thread only spins (20x the CPU time on a busy machine)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_fair_objective_resumes_bit_identically(digits, one_thread, tmp_path):
    for name, params in FAIR.items():
        # the parameters make every state change after epoch 1 and act in epoch 2
        cfg = TrainConfig(dataset="digits", method=name, method_params=params, epochs=2, lr=0.05, weight_decay=0.0,
                          batch_size=64, train_limit=300, eval_subset=100, attack_steps=2,
                          eval_steps=2).resolved(grey=True)
        full, killed = tmp_path / f"{name}-full", tmp_path / f"{name}-killed"
        train(cfg, digits, full)
        with pytest.raises(_Killed):
            train(cfg, digits, killed, on_epoch=_kill_after_first_epoch)
        assert not (killed / FINAL).exists()
        train(cfg, digits, killed, resume=True)
        a, b = (torch.load(d / FINAL, weights_only=True)["state_dict"] for d in (full, killed))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
        sa, sb = (torch.load(d / CHECKPOINT, weights_only=True)["objective"] for d in (full, killed))
        assert _flat(sa) == _flat(sb), name
        if name != "fat-var":  # the stateless one: the others' state must have moved for the test to mean anything
            fresh = OBJECTIVES[name](cfg, list(digits.train.classes), torch.ones(10)).state_dict()
            assert _flat(sa) != _flat(fresh), name


def _flat(state):
    """Objective state as comparable plain values (tensors exactly, nested dicts of weights too)."""
    if isinstance(state, dict):
        return {k: _flat(v) for k, v in state.items()}
    if torch.is_tensor(state):
        return (str(state.dtype), state.tolist())
    return state
