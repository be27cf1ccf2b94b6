"""The long-tail objectives (weighted, class-balanced, ldam-drw, critical, targeted,
cosine-reg) and TRADES's terms against hand computation on tiny tensors, and each
objective's state surviving a kill and resume bit-identically."""

import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from classwise.config import TrainConfig
from classwise.data import load_dataset
from classwise.errors import ClasswiseError
from classwise.evaluation import EvalResult
from classwise.training import CHECKPOINT, train
from classwise.training.objectives import Step, make_objective
from classwise.training.objectives.adversarial_base import base_loss, effective_counts
from classwise.training.objectives.cao2019_ldam_drw import drw_active, ldam_margins
from classwise.training.objectives.cosine_reg import class_mean_cosine
from classwise.training.objectives.cui2019_class_balanced import class_balanced_weights
from classwise.training.objectives.zhang2019_trades import trades_inputs, trades_terms

CLASSES = ["a", "b", "c"]


def _objective(method, **params):
    cfg = TrainConfig(dataset="synthetic", method=method, method_params=params, epochs=10).resolved(grey=True)
    return make_objective(cfg, CLASSES, torch.tensor([100, 100, 100]))


def _val(robust_acc):
    """A validation result whose 'pgd' per-class accuracies are `robust_acc` (10 images a class)."""
    labels = np.repeat(np.arange(3), 10)
    adv = labels.copy()
    for k, a in enumerate(robust_acc):
        wrong = 10 - round(10 * a)
        adv[k * 10:k * 10 + wrong] = (k + 1) % 3
    return EvalResult(CLASSES, labels, labels.copy(), {"pgd": adv})


def test_class_balanced_weights_by_hand():
    beta = 0.9
    n = torch.tensor([1.0, 2.0, 4.0])
    raw = [(1 - beta) / (1 - beta ** k) for k in (1, 2, 4)]  # 1, 0.1/0.19, 0.1/0.3439
    expected = [3 * r / sum(raw) for r in raw]
    assert torch.allclose(class_balanced_weights(n, beta), torch.tensor(expected, dtype=torch.float64))
    # difficulty as counts: robust accuracy 0.2 / 0.5 / 1.0 of 100 images, floored at 0.01
    counts = effective_counts(torch.tensor([100, 100, 100]), torch.tensor([0.2, 0.0, 1.0]), 0.01)
    assert counts.tolist() == pytest.approx([20.0, 1.0, 100.0])
    obj = _objective("class-balanced", beta=0.99)
    assert torch.allclose(obj.weights, torch.ones(3, dtype=torch.float64))  # balanced, nothing measured yet
    obj.end_epoch(1, _val([0.2, 0.5, 1.0]), "pgd")
    raw = [(1 - 0.99) / (1 - 0.99 ** k) for k in (20, 50, 100)]
    assert obj.weights.tolist() == pytest.approx([3 * r / sum(raw) for r in raw])
    assert obj.weights[0] > obj.weights[1] > obj.weights[2]  # the weakest class weighs most


def test_ldam_margins_and_drw_switch():
    m = ldam_margins(torch.tensor([16.0, 1.0, 81.0]), 0.5)
    # n^-1/4: 1/2, 1, 1/3; the largest scaled to 0.5
    assert m.tolist() == pytest.approx([0.25, 0.5, 0.5 / 3])
    # Cao et al.: 0-based epoch // 160 with 200 epochs, i.e. 1-based epochs 161.. re-weighted
    assert not drw_active(160, 200, 0.8) and drw_active(161, 200, 0.8)
    assert [drw_active(e, 3, 0.8) for e in (1, 2, 3)] == [False, False, True]

    obj = _objective("ldam-drw")  # epochs 10: DRW from epoch 9
    obj.end_epoch(1, _val([0.1, 0.8, 1.0]), "pgd")  # counts 10, 80, 100
    expected = torch.tensor([10.0, 80.0, 100.0]) ** -0.25
    assert obj.margins.tolist() == pytest.approx((0.5 * expected / expected.max()).tolist())
    assert obj.weights_at(8) is None
    raw = [(1 - 0.9999) / (1 - 0.9999 ** k) for k in (10, 80, 100)]
    assert obj.weights_at(9).tolist() == pytest.approx([3 * r / sum(raw) for r in raw])
    # the margin comes off the true class's logit only, in units of s = 30
    z = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([2, 0])
    out = obj.transform(z, y)
    hand = torch.tensor([[1, 2, 3 - 30 * obj.margins[2].item()], [-30 * obj.margins[0].item(), 0, 0]])
    assert torch.allclose(out, hand)


def test_trades_kl_term_by_hand_and_inputs_stay_in_the_ball():
    clean = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    adv = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    ce, kl = trades_terms(clean, adv, torch.tensor([0, 1]))
    p = torch.softmax(clean, 1)
    q = torch.softmax(adv, 1)
    hand = [sum(p[i, j] * math.log(p[i, j] / q[i, j]) for j in range(2)) for i in range(2)]
    assert kl.tolist() == pytest.approx([float(h) for h in hand])
    assert ce.tolist() == pytest.approx([-math.log(p[0, 0]), -math.log(p[1, 1])])
    assert kl[1] == pytest.approx(0.0, abs=1e-7)  # a shared offset changes no probability

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x = torch.rand(16, 1, 4, 4) * 0.8 + 0.1
    y = torch.randint(0, 3, (16,))
    cfg = TrainConfig(dataset="synthetic", method="trades", eps=0.1, attack_steps=5).resolved(grey=True)
    from classwise.training.objectives.base import crafter

    craft = crafter(model, cfg, torch.Generator().manual_seed(0))
    x_adv = trades_inputs(Step(model, x, y, craft, 1))
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1

    def mean_kl(xa):
        with torch.no_grad():
            return trades_terms(model(x), model(xa), y)[1].mean().item()

    assert mean_kl(x_adv) > 10 * mean_kl((x + 0.001 * torch.randn(x.shape)).clamp(0, 1))


def test_weighted_fixed_and_adaptive():
    assert _objective("weighted", weights=[1, 1, 2]).weights.tolist() == [1, 1, 2]
    assert _objective("weighted", weights=["c=3"]).weights.tolist() == [1, 1, 3]  # the command line's c=3
    assert _objective("weighted", weights={"b": 2, "0": 0.5}).weights.tolist() == [0.5, 2, 1]
    with pytest.raises(ClasswiseError, match="2 weights given for 3 classes"):
        _objective("weighted", weights=[1, 2])
    with pytest.raises(ClasswiseError, match="no class 'zz'"):
        _objective("weighted", weights={"zz": 2})
    fixed = _objective("weighted", weights=[1, 1, 2])
    fixed.end_epoch(1, _val([0.1, 0.5, 0.9]), "pgd")
    assert fixed.weights.tolist() == [1, 1, 2]  # fixed weights are not updated

    obj = _objective("weighted", power=2.0)
    obj.end_epoch(1, _val([0.1, 0.5, 1.0]), "pgd")
    raw = [0.9 ** 2, 0.5 ** 2, 0.01 ** 2]  # error 0 floored at 0.01
    assert obj.weights.tolist() == pytest.approx([3 * r / sum(raw) for r in raw])
    assert obj.weights.mean().item() == pytest.approx(1.0)


def _step(model, x, y, eps=0.1):
    cfg = TrainConfig(dataset="synthetic", eps=eps, attack_steps=2).resolved(grey=True)
    from classwise.training.objectives.base import crafter

    return Step(model, x, y, crafter(model, cfg, torch.Generator().manual_seed(0)), 1)


def test_critical_weight_in_the_loss():
    obj = _objective("critical", critical="b", critical_weight=4)
    assert obj.weights.tolist() == [1, 4, 1] and _objective("critical", critical=2).weights.tolist() == [1, 1, 5]
    with pytest.raises(ClasswiseError, match="--critical"):
        _objective("critical")
    # the loss is the batch mean of w_y * CE on the (eps 0) adversarial logits
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    torch.manual_seed(1)
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 1, 2, 0, 1])
    loss, logits = obj.loss(_step(model, x, y, eps=0.0))
    ce = F.cross_entropy(model(x), y, reduction="none")
    assert loss.item() == pytest.approx(((torch.tensor([1, 4, 4, 1, 1, 4]) * ce).sum() / 6).item(), rel=1e-6)


def test_targeted_target_choice_and_mask():
    obj = _objective("targeted")
    assert obj.target_class == -1  # nothing measured: epoch 1 is untargeted
    assert not obj.targeted_mask(torch.tensor([0, 1, 2, 0])).any()
    obj.end_epoch(1, _val([0.8, 0.3, 0.6]), "pgd")
    assert obj.target_class == 1
    obj.end_epoch(2, _val([0.2, 0.3, 0.6]), "pgd")
    assert obj.target_class == 0  # chosen again each epoch
    # half the batch (the first half), never the target's own images
    assert obj.targeted_mask(torch.tensor([0, 1, 2, 1, 1, 2])).tolist() == [False, True, True, False, False, False]
    fixed = _objective("targeted", target="c", mix=1.0)
    fixed.end_epoch(1, _val([0.1, 0.3, 0.6]), "pgd")
    assert fixed.target_class == 2  # a named target stays
    # the crafted inputs move toward the target: its probability rises on the targeted images
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x, y = torch.rand(8, 1, 4, 4), torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    s = _step(model, x, y)
    seen = {}
    model_forward = model.forward

    def spy(inp):
        seen["x"] = inp
        return model_forward(inp)

    model.forward = spy
    fixed.loss(s)
    with torch.no_grad():
        before, after = torch.softmax(model_forward(x), 1)[:, 2], torch.softmax(model_forward(seen["x"]), 1)[:, 2]
    assert (after > before).all()


def test_cosine_regulariser_on_hand_made_logits():
    logits = torch.tensor([[1.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1])
    # class means (2, 0, 0) and (0.5, 1, 0): cosine 1 / (2 sqrt(1.25)); class 2 is absent
    assert class_mean_cosine(logits, y, 3, center=False).item() == pytest.approx(0.5 / math.sqrt(1.25))
    # centred: (4/3, -2/3, -2/3) and (0, 0.5, -0.5): dot 0
    assert class_mean_cosine(logits, y, 3, center=True).item() == pytest.approx(0.0, abs=1e-7)
    three = torch.eye(3)
    # one-hot means, centred: pairwise cosine -1/2 (a simplex), the minimum for three classes
    assert class_mean_cosine(three, torch.arange(3), 3).item() == pytest.approx(-0.5)
    assert class_mean_cosine(three, torch.arange(3), 3, center=False).item() == pytest.approx(0.0)
    assert class_mean_cosine(three[:1], torch.tensor([0]), 3).item() == 0.0  # no pair


def test_base_loss_trades_weights_each_images_terms():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x, y = torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 2, 0])
    obj = _objective("class-balanced", base="trades", trades_beta=2.0)
    w = torch.tensor([1.0, 2.0, 3.0])
    x_adv = (x + 0.05).clamp(0, 1)
    step = Step(model, x, y, lambda *a, **k: x_adv, 1)
    loss, _ = base_loss(step, obj.p, weights=w)
    ce, kl = trades_terms(model(x), model(x_adv), y)
    assert loss.item() == pytest.approx((w[y] * (ce + 2.0 * kl)).mean().item(), rel=1e-6)
    # normalised by the batch's weights, as cross_entropy(weight=w) (LDAM-DRW's DRW)
    loss, _ = base_loss(step, obj.p, weights=w, normalise=True)
    assert loss.item() == pytest.approx(((w[y] * (ce + 2.0 * kl)).sum() / w[y].sum()).item(), rel=1e-6)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", val_size=0.2, seed=0)


@pytest.mark.parametrize("method, params", [
    ("weighted", {}), ("class-balanced", {}), ("ldam-drw", {"drw_at": 0.5}),
    ("critical", {"critical": 3}), ("targeted", {}), ("cosine-reg", {}),
])
def test_state_survives_a_kill_and_resume(digits, tmp_path, method, params):
    cfg = TrainConfig(dataset="digits", method=method, method_params=params, epochs=2, train_limit=300,
                      eval_subset=100, attack_steps=2, eval_steps=2, batch_size=64, lr=0.05).resolved(grey=True)
    killed = tmp_path / "killed"
    killed.mkdir()

    def kill_after_first(rec):  # what a kill after epoch 1 leaves: that epoch's checkpoint
        if rec["epoch"] == 1:
            shutil.copy(tmp_path / "full" / CHECKPOINT, killed / CHECKPOINT)

    train(cfg, digits, tmp_path / "full", on_epoch=kill_after_first)
    assert torch.load(killed / CHECKPOINT, weights_only=True)["epoch"] == 1
    train(cfg, digits, killed, resume=True)
    a = torch.load(tmp_path / "full" / CHECKPOINT, weights_only=True)
    b = torch.load(killed / CHECKPOINT, weights_only=True)
    assert b["epoch"] == 2 and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["objective"].keys() == b["objective"].keys()
    for k, v in a["objective"].items():
        assert torch.equal(v, b["objective"][k]) if torch.is_tensor(v) else v == b["objective"][k]
