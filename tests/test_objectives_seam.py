"""The objective seam: registry, parameters, per-class state in checkpoints, the trainer's
hooks (epoch end, weight averaging, final weights), best worst-class checkpoint, NaN stop."""

import json

import pytest
import torch
import torch.nn.functional as F
from pydantic import Field

from classwise.cli import main
from classwise.config import TrainConfig
from classwise.config.methods import METHODS, MethodParams
from classwise.errors import ClasswiseError
from classwise.training import BEST_WORST, CHECKPOINT, FINAL, OBJECTIVES, train
from classwise.training.objectives import Objective, register_objective

BASE = dict(dataset="synthetic", epochs=3, lr=0.05, weight_decay=0.0, batch_size=64, eval_subset=100,
            eval_steps=2, attack_steps=2, train_limit=300, schedule="constant")


class CountingParams(MethodParams):
    poison_epoch: int = Field(default=0, ge=0, description="epoch whose loss is made NaN (0: never)")


@pytest.fixture
def counting():
    """An objective that keeps per-class state from the validation pass and averages weights."""

    @register_objective
    class Counting(Objective):
        name = "test-counting"
        adversarial = False
        Params = CountingParams
        state = ("seen_val", "ema", "steps")

        def __init__(self, *a):
            super().__init__(*a)
            self.seen_val = torch.zeros(self.num_classes, dtype=torch.float64)
            self.ema, self.steps = None, 0

        def loss(self, s):
            logits = s.model(s.x)
            loss = F.cross_entropy(logits, s.y)
            return (loss * float("nan") if s.epoch == self.p.poison_epoch else loss), logits

        def end_epoch(self, epoch, val, robust_key):
            self.seen_val += torch.tensor(val.per_class("clean")["accuracy"].to_numpy())

        def after_step(self, model):
            self.steps += 1
            sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.ema = sd if self.ema is None else {k: 0.5 * self.ema[k] + 0.5 * v if v.is_floating_point() else v
                                                    for k, v in sd.items()}

        def final_weights(self, model):
            return self.ema

    yield Counting
    OBJECTIVES.pop("test-counting")
    METHODS.pop("test-counting")


def test_params_are_validated_with_defaults_filled():
    assert TrainConfig(method="trades").method_params == {"beta": 6.0}
    assert TrainConfig(method="trades", method_params={"beta": 1}).method_params == {"beta": 1.0}
    with pytest.raises(ClasswiseError, match="beta"):
        TrainConfig(method="trades", method_params={"beta": -1})
    with pytest.raises(ClasswiseError, match="unknown method 'nosuch'.*standard"):
        TrainConfig(method="nosuch")
    with pytest.raises(ClasswiseError, match="gamma"):
        TrainConfig(method="trades", method_params={"gamma": 1})


def test_state_hooks_final_weights_and_resume(synth, counting, tmp_path):
    cfg = TrainConfig(method="test-counting", **BASE).resolved(grey=True)
    train(cfg, synth, tmp_path / "full")
    state = torch.load(tmp_path / "full" / CHECKPOINT, weights_only=True)["objective"]
    per_epoch = [json.loads(line)["val_clean_per_class"] for line in (tmp_path / "full" / "metrics.jsonl").open()]
    # the epoch-end hook saw every epoch's validation result; the step hook every step
    assert torch.allclose(state["seen_val"], torch.tensor(per_epoch).double().sum(0))
    assert state["steps"] == 3 * -(-270 // 64)
    # the final model is what the objective says (its average), not the last iterate
    saved = torch.load(tmp_path / "full" / FINAL, weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], state["ema"][k]) for k in saved)

    short = cfg.model_copy(update={"epochs": 2})
    train(short, synth, tmp_path / "resumed")
    ckpt = torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=True)
    ckpt["config"] = cfg.model_dump()  # pretend the run was killed after epoch 2 of 3
    torch.save(ckpt, tmp_path / "resumed" / CHECKPOINT)
    train(cfg, synth, tmp_path / "resumed", resume=True)
    again = torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=True)["objective"]
    assert torch.equal(again["seen_val"], state["seen_val"]) and again["steps"] == state["steps"]
    assert all(torch.equal(again["ema"][k], state["ema"][k]) for k in state["ema"])


def test_best_worst_checkpoint_is_the_epoch_with_the_best_worst_class(synth, tmp_path):
    cfg = TrainConfig(method="fgsm-rs", **{**BASE, "epochs": 2}).resolved(grey=True)
    train(cfg, synth, tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    worst = [min(r["val_robust_per_class"]) for r in records]
    best = torch.load(tmp_path / "run" / BEST_WORST, weights_only=True)
    assert best["epoch"] == 1 + worst.index(max(worst)) and best["val_worst"] == max(worst)
    assert best["arch"] == cfg.arch and set(best["state_dict"]) == set(
        torch.load(tmp_path / "run" / FINAL, weights_only=True)["state_dict"])


def test_non_finite_loss_stops_with_one_line_and_keeps_the_checkpoint(synth, counting, tmp_path):
    cfg = TrainConfig(method="test-counting", method_params={"poison_epoch": 2}, **BASE).resolved(grey=True)
    with pytest.raises(ClasswiseError, match="training loss became nan in epoch 2.*lower --lr"):
        train(cfg, synth, tmp_path / "run")
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["epoch"] == 1
    assert not (tmp_path / "run" / FINAL).exists()


def test_methods_listing_and_flags_come_from_the_registry(capsys, tmp_path):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name, cls in OBJECTIVES.items():
        assert name in out and (cls.paper or "-") in out
    assert "--trades-beta" in out
    # a parameter flag of a method not being trained is refused before any work
    assert main(["train", "--dataset", "digits", "--method", "pgd", "--trades-beta", "3", "--out",
                 str(tmp_path / "r")]) == 2
    assert "--trades-beta is a parameter of method 'trades'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["train", "--dataset", "digits", "--method", "trades", "--trades-beta", "-3", "--out",
                 str(tmp_path / "r")]) == 2
    assert "method 'trades': beta" in capsys.readouterr().err


def test_statistics_the_objective_declares_come_from_the_validation_pass(synth, tmp_path):
    """An objective's own validation attack runs in the trainer's validation pass and its result
    reaches end_epoch under the spec's label; statistics taken at an epoch's start get the
    untrained model's as epoch 0."""
    from classwise.attacks import AttackSpec
    from classwise.training.objectives.base import Statistics

    seen = []

    @register_objective
    class StartStats(Objective):
        name = "test-start-stats"
        adversarial = False
        statistics = (Statistics("validation", "per-class accuracy under its own attack", when="start"),)

        def validation_attacks(self):
            return [AttackSpec(name="pgd", eps=self.cfg.eps, steps=3, iterate="last", images="all")]

        def loss(self, s):
            logits = s.model(s.x)
            return F.cross_entropy(logits, s.y), logits

        def end_epoch(self, epoch, val, robust_key):
            key = self.validation_attacks()[0].label
            seen.append((epoch, key in val.adv_pred, len(val.adv_pred[key])))

    try:
        cfg = TrainConfig(method="test-start-stats", **{**BASE, "epochs": 2}).resolved(grey=True)
        train(cfg, synth, tmp_path / "run")
    finally:
        OBJECTIVES.pop("test-start-stats")
        METHODS.pop("test-start-stats")
    assert seen == [(0, True, 100), (1, True, 100), (2, True, 100)]


def test_fair_training_validation_protocol_last_iterate_and_every_image():
    """iterate="last" scores the last iterate (an image fooled midway that recovers counts as
    robust); images="all" attacks the misclassified images too (one can come out right)."""
    from classwise.attacks import AttackSpec, attack
    from classwise.evaluation import evaluate

    class Flicker(torch.nn.Module):
        """Predicts class 0, except on its forward calls listed in `wrong`, or with `wrong_clean` on
        every pass without gradients (an evaluation's clean pass), where it predicts class 1."""

        def __init__(self, wrong=(), wrong_clean=False):
            super().__init__()
            self.calls, self.wrong, self.wrong_clean = 0, set(wrong), wrong_clean

        def forward(self, x):
            out = torch.tensor([[5.0, 0.0]]).repeat(len(x), 1) + 0.0 * x.flatten(1)[:, :1]
            if self.calls in self.wrong or (self.wrong_clean and not torch.is_grad_enabled()):
                out = out.flip(1)
            self.calls += 1
            return out

    x, y = torch.rand(1, 1, 4, 4), torch.zeros(1, dtype=torch.long)
    spec = AttackSpec(name="pgd", eps=0.1, steps=3)
    assert attack(Flicker({1}), x, y, spec, early_stop=False).success.item()  # fooled at iterate 1
    last = spec.model_copy(update={"iterate": "last"})
    assert not attack(Flicker({1}), x, y, last).success.item()  # but not at the last
    assert last.label == "pgd3-last"
    # the clean pass gets it wrong: only images="all" attacks it, and it comes out right
    every = spec.model_copy(update={"images": "all", "iterate": "last"})
    res = evaluate(Flicker(wrong_clean=True), (x, y), [spec, every], show_progress=False, class_sums=False)
    assert res.accuracy("clean") == 0 and res.accuracy("pgd3") == 0 and res.accuracy("pgd3-last-all") == 1
