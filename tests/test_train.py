import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from classwise.attacks import AttackSpec
from classwise.cli import main
from classwise.config import TrainConfig
from classwise.config.methods import METHODS
from classwise.data import stratified_subset
from classwise.evaluation import evaluate
from classwise.training import lr_factor, train
from classwise.training.objectives import OBJECTIVES, Objective, Step, register_objective
from classwise.training.objectives.base import crafter


def _cli_train(out, *extra):
    return [sys.executable, "-m", "classwise", "train", "--dataset", "synthetic", "--method", "fgsm-rs",
            "--epochs", "3", "--train-limit", "400", "--batch-size", "64", "--eval-subset", "200", "--eval-steps", "3",
            "--test-steps", "3", "--test-limit", "200", "--quiet",
            "--out", str(out), *extra]


def _per_class(run_dir):
    return [(r["epoch"], r["val_clean_per_class"], r["val_robust_per_class"])
            for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]


def test_run_killed_after_an_epoch_resumes_to_the_same_per_class_numbers(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_cli_train(full), check=True, timeout=300, capture_output=True)

    proc = subprocess.Popen(_cli_train(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "checkpoint.pt"
    deadline = time.time() + 240
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = torch.load(ckpt, weights_only=True)["epoch"]
    assert 1 <= done_at_kill < 3, "the kill must land mid-run for this test to mean anything"
    assert not (killed / "model.pt").exists()

    subprocess.run(_cli_train(killed, "--resume"), check=True, timeout=300, capture_output=True)
    assert _per_class(killed) == _per_class(full)
    a = torch.load(full / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(killed / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_adversarial_training_buys_robustness(synth):
    base = dict(dataset="synthetic", arch="mnist-cnn", epochs=3, lr=0.05, weight_decay=0.0, batch_size=64,
                eval_subset=100, eval_steps=3)
    spec = AttackSpec(eps=0.1, steps=10)
    robust = {}
    for method in ("standard", "fgsm-rs"):
        cfg = TrainConfig(method=method, **base).resolved(grey=True)
        model = train(cfg, synth, f"/tmp/classwise-test-{method}").model
        robust[method] = evaluate(model, synth.test, [spec], show_progress=False).accuracy(spec.label)
    assert robust["fgsm-rs"] > robust["standard"] + 0.1


@pytest.mark.parametrize("method", ["pgd", "fgsm-rs"])
def test_training_attacks_stay_in_the_threat_model(trained, synth, method):
    cfg = TrainConfig(method=method, eps=0.1, attack_steps=3).resolved(grey=True)
    x = synth.train.images[:32].float() / 255
    seen = {}

    def model(x_in):  # record what the objective trains on
        seen["x"] = x_in
        return trained(x_in)

    OBJECTIVES[method](cfg, [str(c) for c in range(10)], torch.ones(10)).loss(Step(model, x, synth.train.labels[:32],
                                                         crafter(trained, cfg, torch.Generator().manual_seed(0)), 1))
    x_adv = seen["x"]
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).any()


def test_learning_rate_schedules():
    cyc = TrainConfig(epochs=10, schedule="cyclic")
    assert lr_factor(cyc, 0) == 0 and lr_factor(cyc, 4) == pytest.approx(1) and lr_factor(cyc, 10) == 0
    assert lr_factor(cyc, 2) == pytest.approx(0.5) and lr_factor(cyc, 7) == pytest.approx(0.5)
    ms = TrainConfig(epochs=200, schedule="multistep", milestones=[100, 150])
    assert [lr_factor(ms, e) for e in (99, 100, 149, 150)] == pytest.approx([1, 0.1, 0.1, 0.01])
    st = TrainConfig(epochs=30, schedule="step", step_size=10, gamma=0.5)
    assert [lr_factor(st, e) for e in (9.9, 10, 25)] == pytest.approx([1, 0.5, 0.25])
    cos = TrainConfig(epochs=10, schedule="cosine")
    assert lr_factor(cos, 0) == 1 and lr_factor(cos, 5) == pytest.approx(0.5) and lr_factor(cos, 10) == pytest.approx(0)


def test_config_rejects_unknown_keys_and_bad_combinations():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        TrainConfig(optimizer="adam", nesterov=True)
    cfg = TrainConfig().resolved(grey=False, hflip_ok=True)
    assert cfg.eps == pytest.approx(8 / 255) and cfg.crop_padding == 4 and cfg.hflip


@pytest.mark.parametrize("optimizer,schedule,expected", [("adamw", "cosine", [0.5, 0.0]),
                                                         ("adam", "step", [0.1, 0.01]),
                                                         ("sgd", "multistep", [0.1, 0.1])])
def test_optimisation_factors_from_the_command_line(tmp_path, optimizer, schedule, expected):
    out = tmp_path / "run"
    extra = ["--milestones", "1"] if schedule == "multistep" else []
    assert main(["train", "--dataset", "digits", "--epochs", "2", "--optimizer", optimizer, "--schedule", schedule,
                 "--lr", "0.01", "--weight-decay", "0.02", "--eval-steps", "1", "--test-steps", "1",
                 "--test-limit", "100", "--quiet", "--out", str(out), *extra]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # the lr in force after each epoch's last step (step decays every max(1, epochs // 3) epochs)
    assert [r["lr"] for r in records] == pytest.approx([0.01 * f for f in expected], abs=1e-9)
    config = torch.load(out / "model.pt", weights_only=True)["config"]
    assert (config["optimizer"], config["schedule"], config["weight_decay"]) == (optimizer, schedule, 0.02)


def test_collapse_guard_stops_and_keeps_the_best_epoch(synth, tmp_path):
    """A method that turns to noise after its first epoch makes validation robustness collapse,
    as catastrophic overfitting does; training stops and keeps epoch 1's weights."""
    calls = {"n": 0}
    per_epoch = -(-len(synth.train) // 64)

    @register_objective
    class Sabotage(Objective):
        name = "test-sabotage"

        def loss(self, s):
            calls["n"] += 1
            x = s.x if calls["n"] <= per_epoch else torch.rand(s.x.shape)
            logits = s.model(x)
            return torch.nn.functional.cross_entropy(logits, s.y), logits

    cfg = TrainConfig(dataset="synthetic", method="test-sabotage", epochs=4, lr=0.05, weight_decay=0.0,
                      batch_size=64, eval_subset=100, eval_steps=3, collapse_drop=0.1, schedule="constant",
                      eps=0.02).resolved(grey=True)
    try:
        result = train(cfg, synth, tmp_path / "run")
    finally:
        OBJECTIVES.pop("test-sabotage")
        METHODS.pop("test-sabotage")
    history = result.history
    assert "stopped" in history[-1] and len(history) < 4
    assert history[-1]["val_robust"] < history[0]["val_robust"] - 0.1
    again = evaluate(result.model, stratified_subset(synth.val, 100, seed=0), [AttackSpec(eps=0.02, steps=3)],
                     seed=1, show_progress=False)
    assert again.accuracy("clean") == pytest.approx(history[0]["val_clean"])
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in result.model.state_dict().items())


def test_init_weights_are_the_starting_point(synth, tmp_path):
    """A run started from saved weights begins from them, not from its seed's initialisation:
    with a vanishing learning rate it ends where those weights were."""
    base = TrainConfig(dataset="synthetic", epochs=1, lr=1e-9, weight_decay=0.0, batch_size=256, train_limit=256,
                       eval_subset=50, eval_steps=1, schedule="constant", eps=0.02).resolved(grey=True)
    start = train(base, synth, tmp_path / "a").model.state_dict()
    marked = {k: v + 0.5 if v.is_floating_point() else v for k, v in start.items()}
    torch.save({"state_dict": marked}, tmp_path / "marked.pt")
    cfg = base.model_copy(update={"init_weights": str(tmp_path / "marked.pt")})
    ended = train(cfg, synth, tmp_path / "b").model.state_dict()
    for k, v in marked.items():
        if v.is_floating_point() and "running" not in k:  # BatchNorm statistics move without the gradient
            assert torch.allclose(ended[k], v, atol=1e-4), k
