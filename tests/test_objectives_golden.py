"""Every fair-training objective against its authors' released code, on the golden cases
(tests/golden_cases.py says how the fixtures were made): with fixed adversarial inputs the loss,
and the weights and BatchNorm running statistics after one SGD step, to 1e-6 in float64; end to
end (our attack from the same seed and start as theirs) to 1e-5; and the per-class state each
method adapts (multipliers, weights, eps, margins, FAWA) after several updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from golden_cases import CLASSES, Tiny, load

from classwise.config import TrainConfig
from classwise.evaluate import EvalResult, evaluate
from classwise.evaluate.evaluate import _ClassSums
from classwise.train.objectives import Step, make_objective
from classwise.train.objectives.base import crafter
from classwise.train.objectives.xu2021_frl import frl_errors, frl_weights

INPUTS = load("inputs")
NAMES = [str(k) for k in range(CLASSES)]
BATCHES = list(INPUTS["batches"])


def config(method: str, **fields) -> TrainConfig:
    fields = {"eps": INPUTS["eps"], "attack_alpha": INPUTS["step"], "attack_steps": 10, "epochs": 200, **fields}
    return TrainConfig(dataset="synthetic", method=method, **fields).resolved(grey=False)


def tiny(model: torch.nn.Module | None = None) -> torch.nn.Module:
    model = (model or Tiny()).double()  # before loading: float32 parameters would round the fixture's values
    model.load_state_dict(INPUTS["model"], strict=False)
    return model.train()


def fixed(x_adv):
    """A craft that returns the fixed adversarial inputs, whatever it is asked."""
    return lambda *args, **kwargs: x_adv


def one_step(objective, model, batch, craft, epoch=1, after_step=False):
    """Our loss on the batch, then one SGD step with the fixtures' settings: (loss, state)."""
    opt = torch.optim.SGD(model.parameters(), **INPUTS["sgd"])
    loss, _ = objective.loss(Step(model, batch["x"], batch["y"], craft, epoch))
    loss.backward()
    opt.step()
    if after_step:
        objective.after_step(model)
    return float(loss.detach()), {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_state(ours: dict, theirs: dict, tol: float, strip: str = "") -> None:
    for key, want in theirs.items():
        got = ours[strip + key] if strip + key in ours else ours[key]
        if want.is_floating_point():
            assert torch.allclose(got, want, rtol=0, atol=tol), f"{key}: max |diff| {(got - want).abs().max():.3g}"
        else:
            assert torch.equal(got, want), key


def case(fixture: dict, batch: str, kind: str) -> dict:
    return fixture["cases"][batch][kind]


@pytest.mark.parametrize("batch", BATCHES)
def test_trades_as_released(batch):
    gold, b = load("trades"), INPUTS["batches"][batch]
    cfg = config("trades", method_params={"beta": gold["beta"]})
    objective = make_objective(cfg, NAMES, torch.bincount(b["y"], minlength=CLASSES))
    want = case(gold, batch, "fixed")
    loss, state = one_step(objective, tiny(), b, fixed(b["x_adv"]))
    assert loss == pytest.approx(want["loss"], abs=1e-6)
    assert_state(state, want["state"], 1e-6)  # three train-mode passes: running statistics as theirs
    want = case(gold, batch, "e2e")
    model = tiny()
    craft = crafter(model, cfg, torch.Generator().manual_seed(want["seed"]))
    loss, state = one_step(objective, model, b, craft)
    assert loss == pytest.approx(want["loss"], abs=1e-5)
    assert_state(state, want["state"], 1e-5)


def _val(labels, clean, adv, key) -> EvalResult:
    return EvalResult(NAMES, np.asarray(labels), np.asarray(clean), {key: np.asarray(adv)})


def test_frl_multipliers_weights_and_eps_as_released():
    gold = load("frl")
    frl = make_objective(config("frl", attack_alpha=None), NAMES, torch.full((CLASSES,), 10))
    key = frl.validation_attacks()[0].label
    for rnd, update in zip(gold["rounds"], gold["updates"], strict=True):
        # their multipliers move at the start of epoch e (rate halved at the 40th): ours at the end of e - 1
        frl.end_epoch(update["epoch"] - 1, _val(gold["labels"], rnd["clean_pred"], rnd["adv_pred"], key), None)
        assert torch.allclose(frl.lmbda, update["lmbda"], rtol=0, atol=1e-12)
        for ours, theirs in zip(frl_weights(frl.lmbda), ("diff0", "diff1", "diff2"), strict=True):
            assert torch.allclose(ours, update[theirs], rtol=0, atol=1e-12), theirs


@pytest.mark.parametrize("batch", BATCHES)
def test_frl_step_as_released(batch):
    gold, b = load("frl"), INPUTS["batches"][batch]
    cfg = config("frl", attack_alpha=None)  # their step: max(eps m) / 4
    frl = make_objective(cfg, NAMES, torch.bincount(b["y"], minlength=CLASSES))
    frl.lmbda = gold["updates"][-1]["lmbda"].clone()
    want = case(gold, batch, "fixed")
    loss, state = one_step(frl, tiny(), b, fixed(b["x_adv"]))
    assert loss == pytest.approx(want["loss"], abs=1e-6)
    assert_state(state, want["state"], 1e-6)
    want = case(gold, batch, "e2e")
    model = tiny()
    loss, state = one_step(frl, model, b, crafter(model, cfg, torch.Generator().manual_seed(want["seed"])))
    assert loss == pytest.approx(want["loss"], abs=1e-5)
    assert_state(state, want["state"], 1e-5)


def test_frl_validation_statistics_as_released():
    """Their evaluate: PGD-20 at steps of eps/4 from a uniform start on every image, the last
    iterate counted; ours in the trainer's validation pass gives the same per-class errors."""
    v = load("frl")["validation"]
    frl = make_objective(config("frl", attack_alpha=None), NAMES, torch.full((CLASSES,), 10))
    spec = frl.validation_attacks()[0]
    assert (spec.steps, spec.iterate, spec.images) == (v["steps"], "last", "all")
    model = Tiny().float().eval()
    model.load_state_dict(v["model"])
    res = evaluate(model, (v["x"], v["y"]), [spec], seed=v["seed"], show_progress=False)
    clean_err, bndy_err, total_clean, total_bndy = frl_errors(res, spec.label)
    assert torch.allclose(clean_err, v["clean_error"]) and torch.allclose(bndy_err, v["boundary_error"])
    assert (total_clean, total_bndy) == pytest.approx((v["total_clean_error"], v["total_boundary_error"]))


def _sums_result(model, x, y, x_adv, key) -> EvalResult:
    """An EvalResult whose class sums come from the model's eval-mode logits on x and x_adv (our
    evaluation's own bookkeeping, without its attack)."""
    with torch.no_grad():
        clean, adv = model.eval()(x), model(x_adv)
    sums = {"clean": _ClassSums(CLASSES), key: _ClassSums(CLASSES)}
    sums["clean"].add(clean, y)
    sums[key].add(adv, y, reference=clean)
    return EvalResult(NAMES, y.numpy(), clean.argmax(1).numpy(), {key: adv.argmax(1).numpy()},
                      class_sums={k: s.numpy() for k, s in sums.items()})


def test_wat_costs_and_hedge_weights_as_released():
    """Their validate() on 30 images in batches of 16 (the last batch counted full), three
    epochs, then their Hedge over the summed costs."""
    gold = load("wat")
    c = gold["costs"]
    wat = make_objective(config("wat", batch_size=c["batch_size"]), NAMES, torch.full((CLASSES,), 3))
    assert torch.equal(wat.weights, torch.ones(CLASSES + 1, dtype=torch.float64))  # theirs start at 1
    key = wat.validation_attacks()[0].label
    model, total = tiny(), torch.zeros(CLASSES + 1, dtype=torch.float64)
    for epoch, rnd in enumerate(c["rounds"], start=1):
        wat.end_epoch(epoch, _sums_result(model, c["x"], c["y"], rnd["x_adv"], key), None)
        total += rnd["nat"] + gold["beta"] * rnd["bndy"]
        assert torch.allclose(wat.cum_cost, total, rtol=0, atol=1e-9), (wat.cum_cost - total).abs().max()
    assert torch.allclose(wat.weights, c["weights"], rtol=0, atol=1e-9)


def test_wat_validation_attack_as_released():
    """Their TRADES attack on every validation image, the last iterate scored: our validation
    pass gives the same per-class costs (float32, as their GPUs run)."""
    a = load("wat")["attacked"]
    wat = make_objective(config("wat", batch_size=a["batch_size"]), NAMES, torch.full((CLASSES,), 2))
    model = Tiny().float().eval()
    model.load_state_dict(a["model"])
    res = evaluate(model, (a["x"], a["y"]), wat.validation_attacks(), seed=a["seed"], show_progress=False)
    wat.end_epoch(1, res, None)
    assert torch.allclose(wat.cum_cost, a["nat"] + 6.0 * a["bndy"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch", BATCHES)
def test_wat_step_as_released(batch):
    gold, b = load("wat"), INPUTS["batches"][batch]
    cfg = config("wat")
    wat = make_objective(cfg, NAMES, torch.bincount(b["y"], minlength=CLASSES))
    wat.weights = gold["costs"]["weights"].clone()
    want = case(gold, batch, "fixed")
    loss, state = one_step(wat, tiny(), b, fixed(b["x_adv"]))
    assert loss == pytest.approx(want["loss"], abs=1e-6)
    assert_state(state, want["state"], 1e-6)
    want = case(gold, batch, "e2e")
    model = tiny()
    loss, state = one_step(wat, model, b, crafter(model, cfg, torch.Generator().manual_seed(want["seed"])))
    assert loss == pytest.approx(want["loss"], abs=1e-5)
    assert_state(state, want["state"], 1e-5)
