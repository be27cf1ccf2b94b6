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
from classwise.evaluation import EvalResult, evaluate
from classwise.evaluation.collect import _ClassSums
from classwise.models import Normalized
from classwise.models.heads import with_head
from classwise.training.objectives import Step, make_objective
from classwise.training.objectives.base import crafter
from classwise.training.objectives.cui2019_class_balanced import ClassBalancedParams, class_balanced_weights
from classwise.training.objectives.wei2023_cfa import class_beta, class_eps, class_share, fawa_update
from classwise.training.objectives.xu2021_frl import frl_errors, frl_weights

INPUTS = load("inputs")
NAMES = [str(k) for k in range(CLASSES)]
BATCHES = list(INPUTS["batches"])


def config(method: str, **fields) -> TrainConfig:
    fields = {"eps": INPUTS["eps"], "attack_alpha": INPUTS["step"], "attack_steps": 10, "epochs": 200, **fields}
    return TrainConfig(dataset="synthetic", method=method, **fields).resolved(grey=False)


def tiny(model: torch.nn.Module | None = None) -> torch.nn.Module:
    model = (model or Tiny()).double()  # before loading: float32 parameters would round the fixture's values
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in INPUTS["model"].items() if k in own and own[k].shape == v.shape},
                          strict=False)
    return model.train()


def seeded(model, cfg, seed):
    """Our attack on the model, its random start drawn from a generator under the case's seed."""
    return crafter(model, cfg, torch.Generator().manual_seed(seed))


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


def cfa_model(gold: dict, dtype=torch.float64, state: dict | None = None) -> torch.nn.Module:
    """Their PreAct ResNet sees normalize_cifar(x); ours carries the normalization inside."""
    model = Normalized(Tiny(), gold["mean"], gold["std"]).to(dtype)
    model.net.load_state_dict(state or INPUTS["model"])
    model.mean.copy_(torch.tensor(gold["mean"], dtype=dtype).view_as(model.mean))
    model.std.copy_(torch.tensor(gold["std"], dtype=dtype).view_as(model.std))
    return model.train()


def test_cfa_class_robustness_and_calibration_as_released():
    gold = load("cfa")
    cal = gold["calibration"]
    cfa = make_objective(config("cfa"), NAMES, torch.full((CLASSES,), 4))
    for name, logits in cal["logits"].items():
        cfa._count(logits, INPUTS["batches"][name]["y"])
    cfa.end_epoch(1, None, None)  # t from the training batches: C correct_k / N, over 1 on an unbalanced epoch
    assert torch.allclose(cfa.t, cal["t"], rtol=0, atol=1e-12)
    assert torch.allclose(class_eps(cfa.t, 0.5, INPUTS["eps"]), cal["class_eps"], rtol=0, atol=1e-12)
    assert torch.allclose(class_beta(cfa.t, 0.5, gold["beta"]), cal["class_beta"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("base", ["trades", "pgd"])
@pytest.mark.parametrize("calibrated", [False, True])
@pytest.mark.parametrize("batch", BATCHES)
def test_cfa_step_as_released(batch, calibrated, base):
    gold, b = load("cfa"), INPUTS["batches"][batch]
    cfg = config("cfa", attack_alpha=None, method_params={"base": base, "begin": 1, "fawa": False})
    assert cfg.attack_alpha == pytest.approx(gold["alpha"]) and cfg.attack_bn == ("train" if base == "pgd" else "eval")
    want_all = gold["cases"][batch][base + ("_calibrated" if calibrated else "")]
    for kind, tol in (("fixed", 1e-6), ("e2e", 1e-5)):
        want = want_all[kind]
        cfa = make_objective(cfg, NAMES, torch.bincount(b["y"], minlength=CLASSES))
        cfa.t = gold["calibration"]["t"].clone()
        model = cfa_model(gold)
        craft = fixed(b["x_adv"]) if kind == "fixed" else seeded(model, cfg, want["seed"])
        loss, state = one_step(cfa, model, b, craft, epoch=2 if calibrated else 1, after_step=True)
        assert loss == pytest.approx(want["loss"], abs=tol), kind
        assert_state(state, want["state"], tol, strip="net.")  # with the pass after the step, as theirs
        cfa.end_epoch(2, None, None)
        assert torch.allclose(cfa.t, want["t"], rtol=0, atol=1e-12), kind


def test_cfa_fawa_as_released():
    f = load("cfa")["fawa"]
    avg = None
    for weights, worst, want in zip(f["states"], f["r_min"], f["after"], strict=True):
        avg = fawa_update(avg, weights, worst, threshold=0.24, decay=0.88)
        if want is None:
            assert avg is None
            continue
        for key, value in want.items():  # their integer buffers are averaged and truncated; ours copied
            if value.is_floating_point():
                assert torch.allclose(avg[key], value, rtol=0, atol=1e-12), key


def test_cfa_validation_worst_class_as_released():
    gold = load("cfa")
    v = gold["validation"]
    cfa = make_objective(config("cfa"), NAMES, torch.full((CLASSES,), 3))
    model = cfa_model(gold, torch.float32, v["model"]).eval()
    spec = cfa.validation_attacks()[0]
    res = evaluate(model, (v["x"], v["y"]), [spec], seed=v["seed"], show_progress=False)
    assert torch.allclose(class_share(res, spec.label), v["class_robust"], rtol=0, atol=1e-6)


def test_dafa_class_weights_as_released():
    """Their warm-up epoch remembers the train-mode adversarial softmax of every training image
    (three batches, the model stepping between them); at its end calculate_class_weights."""
    gold = load("dafa")
    dafa = make_objective(config("dafa", method_params={"warmup": 1}), NAMES, torch.full((CLASSES,), 5))
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), **INPUTS["sgd"])
    for b in INPUTS["batches"].values():
        loss, _ = dafa.loss(Step(model, b["x"], b["y"], fixed(b["x_adv"]), 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    dafa.end_epoch(1, None, None)
    assert torch.allclose(dafa.weights, gold["warmup"]["weights"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("base", ["trades", "pgd"])
@pytest.mark.parametrize("batch", BATCHES)
def test_dafa_step_as_released(batch, base):
    gold, b = load("dafa"), INPUTS["batches"][batch]
    cfg = config("dafa", method_params={"base": base, "warmup": 1})
    for kind, tol in (("fixed", 1e-6), ("e2e", 1e-5)):
        want = gold["cases"][batch][base][kind]
        dafa = make_objective(cfg, NAMES, torch.bincount(b["y"], minlength=CLASSES))
        dafa.weights = gold["warmup"]["weights"].clone()
        model = tiny()
        craft = fixed(b["x_adv"]) if kind == "fixed" else seeded(model, cfg, want["seed"])
        loss, state = one_step(dafa, model, b, craft, epoch=2)
        assert loss == pytest.approx(want["loss"], abs=tol), kind
        assert_state(state, want["state"], tol)


@pytest.mark.parametrize("base", ["pgd", "trades"])
@pytest.mark.parametrize("batch", BATCHES)
def test_fat_step_as_released(batch, base):
    """The variance over their 100-slot buffer (90 empty slots on 10 classes, an absent class 0)."""
    gold, b = load("fat"), INPUTS["batches"][batch]
    cfg = config("fat-var", attack_alpha=None, method_params={"base": base})
    assert cfg.attack_alpha == pytest.approx(INPUTS["step"])  # their 0.007 at 0.031 for both bases
    for kind, tol in (("fixed", 1e-6), ("e2e", 1e-5)):
        want = gold["cases"][batch][base][kind]
        fat = make_objective(cfg, NAMES, torch.bincount(b["y"], minlength=CLASSES))
        model = tiny()
        craft = fixed(b["x_adv"]) if kind == "fixed" else seeded(model, cfg, want["seed"])
        loss, state = one_step(fat, model, b, craft)
        assert loss == pytest.approx(want["loss"], abs=tol), kind
        assert_state(state, want["state"], tol)


@pytest.mark.parametrize("epoch", [1, 161])
@pytest.mark.parametrize("batch", BATCHES)
def test_ldam_drw_step_as_released(batch, epoch):
    """LDAM on the cosine classifier, the deferred re-weighting from their 161st of 200 epochs as
    cross_entropy(weight=w): on the fixed adversarial inputs, and on the clean batch (their own,
    standard-training step)."""
    gold, b = load("ldam"), INPUTS["batches"][batch]
    want_all = gold["cases"][batch][str(epoch - 1)]
    ldam = make_objective(config("ldam-drw"), NAMES, gold["cls_num_list"])  # long-tailed counts: used as they are
    assert ldam.p.head() == {"kind": "cosine", "scale": gold["s"]}
    weights = ldam.weights_at(epoch)
    assert (weights is None) == (epoch == 1)
    if weights is not None:
        assert torch.allclose(weights, want_all["weights"], rtol=1e-6)  # theirs in float32
    for kind in ("fixed", "clean"):
        want = want_all[kind]
        model = tiny(with_head(Tiny(), ldam.p.head()))
        model.fc.weight.data.copy_(gold["head"])
        loss, state = one_step(ldam, model, b, fixed(b["x_adv"] if kind == "fixed" else b["x"]), epoch=epoch)
        assert loss == pytest.approx(want["loss"], abs=1e-6), kind
        assert_state(state, want["state"], 1e-6)


def test_class_balanced_weights_as_released():
    """Their TensorFlow 1 code does not run on Python 3.11: the fixture holds their weight lines
    executed as they stand, and their CIFAR-10 script's beta."""
    gold = load("class_balanced")
    assert ClassBalancedParams().beta == gold["script_beta"]
    for name, c in gold["cases"].items():
        beta = float(name.split("@")[1])
        assert torch.allclose(class_balanced_weights(c["counts"], beta), c["weights"], rtol=0, atol=1e-12), name
    cb = make_objective(config("class-balanced"), NAMES, gold["cases"]["cao@0.9999"]["counts"])
    assert torch.allclose(cb.weights, gold["cases"]["cao@0.9999"]["weights"], rtol=0, atol=1e-12)
