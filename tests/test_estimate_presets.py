"""Issue 28, parts 1 and 2: the time estimate printed before a long run (study, train, sweep,
features build) and the study presets resolved per data set, with airbench's small net."""

import argparse
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from datafiles import write_cifar10

from classwise import estimate_training as et
from classwise.config.study import DATASET_PRESETS, PRESETS, preset_config

# --- presets per data set ------------------------------------------------------------------


def test_fashion_mnist_quick_is_unchanged():
    """The README quotes the default Fashion-MNIST study's numbers: its preset must not move."""
    run = preset_config("quick").run
    assert run.dataset == "fashion-mnist" and run.arch == "mnist-cnn"
    for key, value in PRESETS["quick"].items():
        assert getattr(run, key) == value
    assert run.train_limit is None and run.test_limit is None and run.batch_size == 128
    assert "fashion-mnist" not in DATASET_PRESETS["quick"]


@pytest.mark.parametrize("dataset", ["cifar10", "svhn", "cifar100"])
def test_quick_resolves_per_colour_data_set(dataset):
    run = preset_config("quick", dataset=dataset).run
    assert run.arch == "airbench-half" and run.schedule == "cyclic" and run.nesterov
    assert run.train_limit is None and run.test_limit is None and run.test_steps == 20  # whole splits
    assert run.epochs == (2 if dataset == "svhn" else 3)


def test_given_values_win_over_the_data_set_preset():
    run = preset_config("quick", dataset="cifar10", arch="resnet20", epochs=7, lr=None).run
    assert (run.arch, run.epochs, run.lr) == ("resnet20", 7, 0.2)  # None: not given
    assert preset_config("quick", dataset="cifar10", train_limit=3000).run.train_limit == 3000
    assert preset_config("quick", dataset="digits").run.arch == "mnist-cnn"  # the data set's default arch


def test_study_cli_leaves_the_architecture_to_the_preset():
    from classwise.cli.common import overrides

    args = argparse.Namespace(dataset="cifar10", arch=None, epochs=None)
    assert "arch" not in overrides(args, default_arch=False)
    assert overrides(args)["arch"] == "resnet20"  # train: the data set's default, as before


# --- the airbench net ------------------------------------------------------------------------


def test_airbench_nets_build_train_and_fold():
    from classwise.attacks.fold import folded
    from classwise.models import MODELS, count_parameters, create_model

    assert {"airbench", "airbench-half"} <= set(MODELS)
    full, half = create_model("airbench", 10, 3, 32), create_model("airbench-half", 100, 3, 32)
    assert count_parameters(half) < count_parameters(full) / 3
    x = torch.rand(4, 3, 32, 32)
    assert full(x).shape == (4, 10) and half(x).shape == (4, 100)
    half(x).sum().backward()  # trains: every parameter gets a gradient
    assert all(p.grad is not None for p in half.parameters())
    half.eval()
    fast = folded(half)
    assert fast is not half  # each conv is followed by its BatchNorm: it folds
    assert torch.allclose(fast(x), half(x), atol=1e-4)


# --- the estimate's arithmetic, with the timings fixed ------------------------------------------


@pytest.fixture
def fixed_timings(monkeypatch):
    monkeypatch.setattr(et, "_time_interleaved",
                        lambda runs, device: [0.01 if cfg.method == "standard" else 0.02 for cfg, _ in runs])
    monkeypatch.setattr(et, "_time_attack_step", lambda model, data, cfg, device: (0.001, 0.002))


def _digits_study(**kw):
    from classwise.data import load_dataset
    from classwise.study.execute import resolve

    cfg = preset_config("smoke", dataset="digits", **kw)
    splits = load_dataset("digits", val_size=cfg.run.val_size, seed=0)
    return cfg.model_copy(update={"run": resolve(cfg.run, splits)}), splits


def test_estimate_scales_timed_steps_to_the_plan(fixed_timings):
    cfg, splits = _digits_study(epochs=3, train_limit=500, eval_subset=100, eval_steps=5, test_limit=200,
                                test_steps=10, seeds=[0, 1])
    arms, total = et.estimate_study(cfg, splits, "cpu")
    std, adv = arms
    assert std.train == pytest.approx(0.01 * 500 * 3) and adv.train == pytest.approx(0.02 * 500 * 3)
    assert std.validation == pytest.approx(3 * 100 * (0.001 + et.ALIVE["standard"] * 0.002 * 5))
    assert adv.test == pytest.approx(200 * (0.001 + et.ALIVE["adversarial"] * 0.002 * 10))
    assert total == pytest.approx(2 * (std.seconds + adv.seconds))  # two seeds
    lines = et.study_lines(cfg, splits, torch.device("cpu"))
    assert lines[0].startswith("estimated time: about") and "2 arms x 2 seeds" in lines[0]
    assert lines[1].startswith("  standard:") and lines[2].startswith("  fgsm-rs:") and "images/s" in lines[1]
    assert len(lines) == 3  # short: no advice


def test_a_long_cpu_run_names_the_faster_options(fixed_timings):
    cfg, splits = _digits_study(epochs=200)  # 200 epochs of 1,200 images at 20 ms: over an hour
    lines = et.study_lines(cfg.model_copy(update={"preset": "custom"}), splits, torch.device("cpu"))
    advice = lines[-1]
    assert "more than 30 min on this CPU" in advice
    for option in ("--preset quick", "--train-limit", "GPU"):
        assert option in advice
    assert not et.faster_options(10_000, torch.device("cuda"))  # not on an accelerator
    assert "--arch airbench-half" in et.faster_options(10_000, "cpu", dataset="cifar10", arch="resnet20")[0]


def test_estimate_is_measured_on_the_real_step():
    """Unpatched: a digits run's steps are timed for real, in well under the run's own time."""
    cfg, splits = _digits_study(epochs=1, train_limit=300)
    arm = et.estimate_arm(cfg.run.model_copy(update={"method": "fgsm-rs"}), splits, "cpu")
    assert arm.train > 0 and arm.validation > 0 and arm.test > 0 and arm.train_images_per_s > 0


def test_study_train_and_sweep_print_the_estimate_first(tmp_path):
    common = ["--dataset", "digits", "--epochs", "1", "--train-limit", "200", "--eval-subset", "50",
              "--test-limit", "100", "--test-steps", "2", "--eval-steps", "2"]
    proc = subprocess.run([sys.executable, "-m", "classwise", "study", "--preset", "smoke", *common,
                           "--no-figures", "--no-sanity", "--out", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "estimated time: about" in err and "  fgsm-rs: about" in err
    assert err.index("estimated time") < err.index("standard: epoch 1")  # before training starts
    # a resume that adds an arm times only the run it has still to make
    proc = subprocess.run([sys.executable, "-m", "classwise", "study", "--preset", "smoke", *common,
                           "--methods", "standard,fgsm-rs,pgd", "--resume", "--no-figures", "--no-sanity",
                           "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "for the 1 run left of 3 " in err and "  pgd: about" in err and "  standard: about" not in err, err
    assert err.index("estimated time") < err.index("pgd: epoch 1")
    proc = subprocess.run([sys.executable, "-m", "classwise", "train", *common, "--out", str(tmp_path / "t")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.index("estimated time: about") < proc.stderr.index("epoch 1")
    grid = tmp_path / "g.toml"
    grid.write_text('name = "g"\n[run]\ndataset = "digits"\nepochs = 1\ntrain_limit = 200\neval_subset = 50\n'
                    'test_limit = 100\ntest_steps = 2\neval_steps = 2\n[grid]\nmethod = ["standard", "fgsm-rs"]\n')
    proc = subprocess.run([sys.executable, "-m", "classwise", "sweep", str(grid), "--out", str(tmp_path / "g")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "estimated time: about" in proc.stderr and "for 2 runs" in proc.stderr
    assert "digits mnist-cnn fgsm-rs seed 0: about" in proc.stderr


def test_quiet_prints_no_estimate(monkeypatch, capsys):
    from classwise import progress

    monkeypatch.setattr(progress, "QUIET", True)
    et.say(lambda: ["estimated time: about 1 min"])
    assert "estimated" not in capsys.readouterr().err
    monkeypatch.setattr(progress, "QUIET", False)
    et.say(lambda: (_ for _ in ()).throw(RuntimeError("needs the run's own state")))
    assert "no time estimate: needs the run's own state" in capsys.readouterr().err


def test_features_build_estimate(tmp_path):
    from classwise.analysis.features import PAPER
    from classwise.data import load_dataset, stratified_subset
    from classwise.models import create_model

    data = stratified_subset(load_dataset("digits").train, 40, seed=0)
    model = create_model("mnist-cnn", 10, 1, 8)
    lines = et.features_lines(model, data, "robust", PAPER["robust"], batch_size=20, device="cpu",
                              out=tmp_path, chunk=20)
    assert lines[0].startswith("estimated time: about") and "40 images x 1000 steps" in lines[0]
    est = et.features_estimate(model, data, "det", PAPER["det"], batch_size=20, device="cpu", todo=40)
    assert est.seconds > 0 and est.n == 40


def test_cifar_quick_study_plans_on_the_tiny_cifar_files(tmp_path, fixed_timings):
    """The quick CIFAR-10 preset resolved on (tiny, random) CIFAR files: airbench-half, and a plan
    scaled to what the files hold (train limit above the data: all of it)."""
    from classwise.data import load_dataset
    from classwise.study.execute import resolve

    write_cifar10(tmp_path, per_batch=40, n_test=50)
    cfg = preset_config("quick", dataset="cifar10")
    splits = load_dataset("cifar10", tmp_path, val_size=cfg.run.val_size, seed=0)
    cfg = cfg.model_copy(update={"run": resolve(cfg.run, splits)})
    assert cfg.run.arch == "airbench-half" and cfg.run.eps == pytest.approx(8 / 255)
    std, adv = et.estimate_study(cfg, splits, "cpu")[0]
    assert std.train == pytest.approx(0.01 * len(splits.train) * 3)
    assert adv.test == pytest.approx(len(splits.test) * (0.001 + et.ALIVE["adversarial"] * 0.002 * 20))


def test_study_clock_says_the_time_left_as_each_arm_starts(monkeypatch):
    lines, now = [], [0.0]
    monkeypatch.setattr(et, "say", lambda fn, *a, **k: lines.extend(fn(*a, **k)))
    monkeypatch.setattr(et.time, "perf_counter", lambda: now[0])
    cfg = SimpleNamespace(arms=["standard", "fgsm-rs"], seed_list=[0, 1])
    arms = [et.ArmEstimate("standard", 50, 10, 0, 1.0), et.ArmEstimate("fgsm-rs", 100, 10, 10, 1.0)]
    # a resume counts what is left of a run stopped mid-way (half its epochs) and its whole test
    assert et.run_plan(cfg, arms, {("fgsm-rs", 0): 0.5, ("standard", 1): 1.0}) == [("fgsm-rs", 65.0),
                                                                                    ("standard", 60.0)]
    clock = et.StudyClock(et.run_plan(cfg, arms))
    clock.arm_starts("standard")
    assert not lines  # nothing measured yet: the estimate itself was printed
    now[0] = 120.0  # standard took twice its estimate
    clock.arm_starts("fgsm-rs")
    # what is left (fgsm-rs, standard, fgsm-rs: 300 s) at the pace so far (2x)
    assert lines == ["fgsm-rs (run 2 of 4) starts after 2 min: about 10 min left (the runs so far took 2.00x "
                     "their estimate)"]
