"""Mixed precision and compilation (classwise/precision.py): bf16 per-class results within a point
of fp32, verdicts and AutoAttack in fp32, the sanity check that catches a lower precision
masking gradients, fp16's gradient scaler through a checkpoint, the settings recorded in the run's
config (and left out at their defaults, so older runs keep their ids), and compiled steps giving
eager's loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import classwise as cw
from classwise.attacks import AttackSpec, AutoAttackSpec, attack
from classwise.config import TrainConfig
from classwise.data import make_synthetic
from classwise.evaluation import evaluate, sanity_checks
from classwise.precision import autocast, compiled, lowered
from classwise.training import make_optimizer, make_scheduler, train_epoch


@pytest.fixture(scope="module")
def small():
    """An 8-px 10-class set big enough for per-class points (200 test images a class), and a
    small CNN trained on it (94% clean): a minute's model in a second."""
    train, test = make_synthetic(num_classes=10, shape=(1, 8, 8), n_train=2000, n_test=2000, seed=1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1, stride=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(512, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = train.images.float() / 255, train.labels
    for _ in range(10):
        for i in range(0, len(y), 100):
            loss = F.cross_entropy(model(x[i:i + 100]), y[i:i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), test


def test_bf16_per_class_results_within_a_point_of_fp32(small):
    model, test = small
    dtypes = []
    hook = model[5].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    spec = AttackSpec(eps=0.1, steps=10)
    res = {p: evaluate(model, test, [spec], precision=p, show_progress=False) for p in ("fp32", "bf16")}
    hook.remove()
    assert torch.bfloat16 in dtypes  # the bf16 search really ran in bf16
    assert res["bf16"].attacks["pgd10"]["precision"] == "bf16" and "precision" not in res["fp32"].attacks["pgd10"]
    for key in ("clean", "pgd10"):
        diff = res["bf16"].per_class(key)["accuracy"] - res["fp32"].per_class(key)["accuracy"]
        assert diff.abs().max() <= 0.01, f"{key}: per-class differences {diff.round(4).tolist()}"
    assert 0.05 < res["fp32"].accuracy("pgd10") < res["fp32"].accuracy("clean")  # an attack with work to do
    np.testing.assert_array_equal(res["bf16"].clean_pred, res["fp32"].clean_pred)  # the clean pass is fp32


def test_a_lowered_search_reports_fp32_verdicts(small):
    model, test = small
    x, y = test.images[:300].float() / 255, test.labels[:300]
    with autocast("bf16", "cpu"):
        assert lowered("cpu") == "bf16"
        out = attack(model, x, y, AttackSpec(eps=0.1, steps=5), generator=torch.Generator().manual_seed(0))
    assert lowered("cpu") is None
    with torch.no_grad():
        fp32 = model(out.x_adv).argmax(1)
    assert torch.equal(out.pred, fp32) and torch.equal(out.success, fp32 != y)


class _MaskedInBf16(nn.Module):
    """A model whose input gradient vanishes under autocast only: what rounding can do to a
    model's gradients, made certain."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        if torch.is_autocast_enabled("cpu"):
            return self.net(x.detach()) + 0.0 * x.sum()
        return self.net(x)


def test_sanity_warns_when_the_lower_precision_shows_more_robustness(small):
    model, test = small
    masked = _MaskedInBf16(model).eval()
    spec = AttackSpec(eps=0.1, steps=10)
    sub = test.subset(np.arange(300))
    res = evaluate(masked, sub, [spec], precision="bf16", show_progress=False)
    report = sanity_checks(res, masked, sub, spec=spec)
    check = report["precision"]
    assert check.status == "warn" and "bf16" in check.detail and "fp32" in check.detail
    # the same check is quiet on the honest model, and absent from an fp32 evaluation's report
    honest = evaluate(model, sub, [spec], precision="bf16", show_progress=False)
    assert sanity_checks(honest, model, sub, spec=spec)["precision"].status == "ok"
    fp32 = evaluate(model, sub, [spec], show_progress=False)
    assert "precision" not in [c.name for c in sanity_checks(fp32, model, sub, spec=spec).checks]


def test_autoattack_runs_in_fp32_under_a_bf16_evaluation(small):
    pytest.importorskip("pyautoattack")
    model, test = small
    seen = []
    hook = model[5].register_forward_hook(lambda m, i, o: seen.append((o.dtype, torch.is_grad_enabled())))
    sub = test.subset(np.arange(40))
    aa = AutoAttackSpec(eps=0.1, version="custom", attacks=("apgd-ce",), iterations=3)
    pgd = AttackSpec(eps=0.1, steps=3)
    res = evaluate(model, sub, {"pgd": pgd}, precision="bf16", show_progress=False)
    assert any(d == torch.bfloat16 for d, _ in seen)
    seen.clear()
    res = evaluate(model, sub, {"aa": aa}, precision="bf16", show_progress=False)
    hook.remove()
    assert seen and all(d == torch.float32 for d, _ in seen)
    assert "precision" not in res.attacks["aa"]


def _train(tmp_path, **fields):
    splits = cw.load_dataset("digits")
    cfg = TrainConfig(dataset="digits", method="fgsm-rs", lr=0.05, train_limit=400, eval_subset=100, eval_steps=3,
                      **fields).resolved(grey=True)
    return cw.train(cfg, splits, tmp_path, device="cpu"), cfg, splits


def test_bf16_training_step(tmp_path):
    """Under bf16 the step's convolutions run in bf16 (the weights stay fp32) and its loss is
    fp32's to bf16's rounding; the run's config says bf16."""
    data = make_synthetic(10, (1, 8, 8), n_train=128, n_test=10, seed=0)[0]
    losses, dtypes = {}, []
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(dataset="s", method="fgsm-rs", eps=0.1, batch_size=64, lr=0.05, epochs=1, crop_padding=0,
                          hflip=False, attack_bn="eval", precision=precision).resolved(grey=True)
        torch.manual_seed(0)
        model = cw.training.build_model(cfg, data)
        hook = model.net.features[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
        opt = make_optimizer(model.parameters(), cfg)
        losses[precision], _ = train_epoch(model, data, cfg, opt, make_scheduler(opt, cfg, 2),
                                           torch.Generator().manual_seed(0), device="cpu")
        hook.remove()
        assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.bfloat16 in dtypes and torch.float32 in dtypes
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)  # bf16 keeps 8 bits of mantissa
    run, cfg, _ = _train(tmp_path / "bf16", epochs=1, precision="bf16")
    state = torch.load(tmp_path / "bf16" / "checkpoint.pt", weights_only=True)
    assert state["config"]["precision"] == "bf16" and "scaler" not in state


def test_fp16_scales_the_loss_and_a_resume_takes_the_scale_back(tmp_path):
    run, cfg, splits = _train(tmp_path, epochs=1, precision="fp16")
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["config"]["precision"] == "fp16" and state["scaler"]["scale"] > 0
    assert np.isfinite(run.history[-1]["train_loss"])
    state["scaler"]["scale"] = 1024.0  # a scale the fresh scaler would not start from
    torch.save(state, tmp_path / "checkpoint.pt")
    seen = {}
    real = torch.amp.GradScaler.load_state_dict
    torch.amp.GradScaler.load_state_dict = lambda self, s: seen.update(s) or real(self, s)
    try:
        cw.train(cfg, splits, tmp_path, device="cpu", resume=True)  # finished: reads the checkpoint back
    finally:
        torch.amp.GradScaler.load_state_dict = real
    assert seen["scale"] == 1024.0


def test_precision_and_compile_are_recorded_only_away_from_their_defaults():
    from classwise.config.run import RunConfig
    from classwise.study.grid import run_id

    plain = TrainConfig().model_dump()
    assert "precision" not in plain and "compile" not in plain  # runs made before the fields keep their ids
    low = TrainConfig(precision="bf16", compile=True)
    assert low.model_dump()["precision"] == "bf16" and low.model_dump()["compile"] is True
    assert TrainConfig(**low.model_dump()) == low and json.loads(low.model_dump_json())["precision"] == "bf16"
    assert run_id(RunConfig(precision="bf16")) != run_id(RunConfig())
    assert run_id(RunConfig(precision="fp32")) == run_id(RunConfig())
    with pytest.raises(cw.ClasswiseError):
        TrainConfig(precision="fp8")


def test_cli_train_takes_precision(tmp_path, capsys):
    from classwise.cli import main

    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--method", "fgsm-rs", "--epochs", "1", "--train-limit", "300",
                 "--eval-subset", "50", "--test-limit", "50", "--precision", "bf16", "--out", str(out),
                 "--quiet"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["config"]["precision"] == "bf16"


def _need_inductor() -> None:
    """Skip where torch.compile's inductor cannot run (no C++ compiler, a torch without it)."""
    try:
        fn = torch.compile(lambda t: t * 2 + 1)
        works = bool(torch.equal(fn(torch.ones(3)), torch.full((3,), 3.0)))
    except Exception:  # noqa: BLE001 - any failure to compile means: not here
        works = False
    if not works:
        pytest.skip("torch.compile's inductor cannot run here")


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                               nn.Linear(256, 10))

    def forward(self, x):
        return self.f(x)


def test_compiled_and_eager_give_the_same_loss_after_a_step():
    """An FGSM-RS epoch of two steps (the training attack in eval mode, the step in train mode:
    both graphs compiled), then the loss on a batch: compiled to eager's within 1e-5 relative
    (inductor may sum in another order)."""
    _need_inductor()
    data = make_synthetic(10, (1, 8, 8), n_train=64, n_test=10, seed=0)[0]
    cfg = TrainConfig(dataset="s", method="fgsm-rs", eps=0.1, batch_size=32, lr=0.05, epochs=1, crop_padding=0,
                      hflip=False, attack_bn="eval", channels_last=False).resolved(grey=True)
    x, y = data.images[:32].float() / 255, data.labels[:32]
    got = {}
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        model = _Tiny()
        opt = make_optimizer(model.parameters(), cfg)
        net = compiled(model) if mode == "compiled" else model
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        train_loss, _ = train_epoch(net, data, cfg, opt, make_scheduler(opt, cfg, 2), torch.Generator().manual_seed(0),
                                    device="cpu", attacked=net)
        if mode == "compiled":
            assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2  # train and attack graphs
        with torch.no_grad():
            got[mode] = (train_loss, float(F.cross_entropy(model.eval()(x), y)))
    assert got["compiled"][0] == pytest.approx(got["eager"][0], rel=1e-5)
    assert got["compiled"][1] == pytest.approx(got["eager"][1], rel=1e-5)
