"""Study configs: validation, deterministic run ids, and the research plan's presets."""

from pathlib import Path

import pytest

from classwise.errors import ClasswiseError
from classwise.study.execute import resolve
from classwise.study.grid import load_grid, run_id

PRESETS = Path(__file__).resolve().parents[1] / "configs"


def _write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,named", [
    ('name = "x"\n[run]\nlearning_rate = 0.1\n', "learning_rate"),
    ('name = "x"\n[grid]\nlrr = [0.1, 0.2]\n', "lrr"),
    ('name = "x"\ncolour = "blue"\n', "colour"),
    ('name = "x"\n[grid]\n"optimizer+lrate" = [["sgd", 0.1]]\n', "lrate"),
])
def test_unknown_keys_are_rejected_by_name(tmp_path, text, named):
    with pytest.raises(ClasswiseError, match=f"unknown key '[a-z.]*{named}'"):
        load_grid(_write(tmp_path, text))


def test_bad_values_and_shapes_are_rejected(tmp_path):
    with pytest.raises(ClasswiseError, match="epochs"):
        load_grid(_write(tmp_path, 'name = "x"\n[run]\nepochs = 0\n'))
    with pytest.raises(ClasswiseError, match="list of 2"):
        load_grid(_write(tmp_path, 'name = "x"\n[grid]\n"optimizer+lr" = [["sgd"]]\n'))
    with pytest.raises(ClasswiseError, match="TOML"):
        load_grid(_write(tmp_path, 'name = "x\n'))


def test_grid_expands_axes_and_zipped_axes(tmp_path):
    grid = load_grid(_write(tmp_path, 'name = "g"\n[run]\ndataset = "digits"\nepochs = 2\n[grid]\n'
                                      'method = ["standard", "fgsm-rs"]\n'
                                      '"optimizer+lr" = [["sgd", 0.1], ["adam", 0.001]]\n'))
    runs = grid.runs()
    assert [(r.method, r.optimizer, r.lr) for r in runs] == [
        ("standard", "sgd", 0.1), ("standard", "adam", 0.001), ("fgsm-rs", "sgd", 0.1), ("fgsm-rs", "adam", 0.001)]
    assert all(r.epochs == 2 and r.dataset == "digits" for r in runs)


def test_run_ids_come_from_the_resolved_config(tmp_path):
    a = load_grid(_write(tmp_path, 'name = "a"\n[run]\ndataset = "digits"\n')).runs()[0]
    b = load_grid(_write(tmp_path, 'name = "b"\n[run]\ndataset = "digits"\neps = 0.1\n')).runs()[0]
    c = load_grid(_write(tmp_path, 'name = "c"\n[run]\ndataset = "digits"\neps = 0.2\n')).runs()[0]
    assert run_id(resolve(a)) == run_id(resolve(b))  # eps 0.1 is the grey default
    assert run_id(resolve(a)) != run_id(resolve(c))
    assert run_id(resolve(a)) == run_id(resolve(a.model_copy()))
    assert len(run_id(resolve(a))) == 12


@pytest.mark.parametrize("name", ["datasets-paper", "architectures-paper", "optimization-paper"])
def test_paper_presets_use_the_fields_usual_schedule(name):
    grid = load_grid(PRESETS / f"{name}.toml")
    runs = [resolve(r) for r in grid.runs()]
    assert {r.method for r in runs} == {"standard", "pgd"}
    for r in runs:
        assert (r.epochs, r.batch_size, r.momentum, r.gamma) == (200, 128, 0.9, 0.1)
        assert r.milestones == [100, 150]
        assert r.attack_steps == 10
        alpha = r.attack_alpha if r.attack_alpha is not None else r.eps / 4
        if r.dataset not in ("mnist", "fashion-mnist"):
            assert r.eps == pytest.approx(8 / 255) and alpha == pytest.approx(2 / 255)
        if name != "optimization-paper":
            assert (r.optimizer, r.lr, r.weight_decay, r.schedule) == ("sgd", 0.1, 5e-4, "multistep")
    if name == "datasets-paper":
        assert {r.dataset for r in runs} == {"mnist", "fashion-mnist", "svhn", "cifar10", "cifar100", "tiny-imagenet"}
        assert {r.arch for r in runs} == {"resnet18"}
    if name == "architectures-paper":
        assert {r.arch for r in runs} >= {"lenet", "vgg16", "vgg19", "resnet18", "resnet50", "densenet121",
                                          "densenet169", "googlenet", "inception-v3"}
    if name == "optimization-paper":
        assert {(r.optimizer, r.lr) for r in runs} == {("sgd", 0.1), ("adam", 0.001)}
        assert {r.schedule for r in runs} == {"multistep", "cyclic"}
        assert {r.weight_decay for r in runs} == {0.0, 5e-4, 5e-3}
        sgd_default = [r for r in runs if r.optimizer == "sgd" and r.schedule == "multistep" and r.weight_decay == 5e-4]
        assert sgd_default and all(r.lr == 0.1 for r in sgd_default)


@pytest.mark.parametrize("name", ["datasets-quick", "architectures-quick", "optimization-quick"])
def test_quick_presets_are_cpu_sized(name):
    runs = load_grid(PRESETS / f"{name}.toml").runs()
    assert runs and all(r.epochs <= 5 and r.train_limit and r.train_limit <= 2000 for r in runs)


def test_the_run_flags_are_made_from_the_config_fields():
    """`train`'s run flags come from RunConfig: the help is the field's description, the type and
    choices the field's, so a field and its flag cannot drift apart."""
    import argparse

    from classwise.cli.common import TRAIN_FLAGS, train_options
    from classwise.config.run import RunConfig

    p = argparse.ArgumentParser()
    train_options(p)
    actions = {a.dest: a for a in p._actions}
    for name in TRAIN_FLAGS:
        assert RunConfig.model_fields[name].description, name
        assert actions[name].help == RunConfig.model_fields[name].description
    assert actions["optimizer"].choices == ["sgd", "adam", "adamw"]
    args = p.parse_args(["--milestones", "100,150", "--nesterov", "--lr", "0.05", "--epochs", "3", "--imbalance", "10"])
    assert (args.milestones, args.nesterov, args.lr, args.epochs, args.imbalance) == ([100, 150], True, 0.05, 3, 10.0)
    assert args.momentum is None and args.schedule is None  # not given: the preset or the config decides
    RunConfig(**{k: v for k, v in vars(args).items() if k in TRAIN_FLAGS and v is not None})  # and they validate
