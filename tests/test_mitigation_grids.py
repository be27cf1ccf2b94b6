"""The mitigation grids (every training objective side by side; the paper one in CFA's Table 1
setting) and AutoAttack per run in a sweep's final evaluation."""

import json

import pytest

from classwise.config.run import RunConfig
from classwise.data import load_dataset
from classwise.errors import ClasswiseError
from classwise.study.execute import execute_run
from classwise.study.grid import load_grid
from classwise.training import OBJECTIVES
from classwise.training.resolve import resolve

MITIGATION = {"pgd", "trades", "weighted", "class-balanced", "ldam-drw", "critical", "targeted", "cosine-reg",
              "frl", "fat-var", "cfa", "wat", "dafa"}


def test_mitigation_paper_grid_is_each_papers_protocol():
    runs = {r.method: resolve(r) for r in load_grid("mitigation-paper").runs()}
    assert set(runs) == MITIGATION and set(OBJECTIVES) >= MITIGATION
    for r in runs.values():
        assert (r.optimizer, r.lr if r.method != "frl" else 0.1, r.momentum, r.test_steps) == ("sgd", 0.1, 0.9, 20)
        assert r.attack_steps == (7 if r.method == "pgd" else 10)
        assert r.test_autoattack_spec().version == "standard"
    # each paper's own released script, as the rows' comments say
    protocol = {
        "pgd": ("cifar10", "wrn-34-10", 205, [102, 154], 0.1, 2e-4, 128, 8 / 255, 2 / 255),
        "trades": ("cifar10", "wrn-34-10", 76, [74], 0.1, 2e-4, 128, 0.031, 0.007),
        "cfa": ("cifar10", "preact-resnet18", 200, [100, 150], 0.1, 5e-4, 128, 8 / 255, 2 / 255),
        "wat": ("cifar10", "resnet18", 100, [74, 89, 99], 0.1, 2e-4, 128, 0.031, 0.007),
        "dafa": ("cifar10", "resnet18", 110, [99, 104], 0.1, 5e-4, 128, 0.031, 0.007),
        "fat-var": ("cifar10", "wrn-34-10", 120, [59, 89, 109], [0.1, 0.1, 0.5], 2e-4, 512, 0.031, 0.007),
        "ldam-drw": ("cifar10-lt", "resnet32", 200, [160, 180], [0.01, 0.01], 2e-4, 128, 8 / 255, 2 / 255),
        "class-balanced": ("cifar10-lt", "resnet32", 200, [160, 180], [0.01, 0.01], 2e-4, 128, 8 / 255, 2 / 255),
    }
    for method, (dataset, arch, epochs, milestones, gamma, wd, batch, eps, step) in protocol.items():
        r = runs[method]
        assert (r.dataset, r.arch, r.epochs, r.milestones, r.gamma, r.weight_decay, r.batch_size) == \
            (dataset, arch, epochs, milestones, gamma, wd, batch), method
        assert (r.eps, r.attack_alpha) == (pytest.approx(eps), pytest.approx(step)), method
    assert runs["ldam-drw"].warmup_epochs == 5 and runs["ldam-drw"].imbalance == 100
    assert runs["dafa"].nesterov and runs["dafa"].method_params["warmup"] == 70
    assert (runs["frl"].epochs, runs["frl"].lr, runs["frl"].schedule, runs["frl"].eval_subset) == (40, 0.001,
                                                                                                   "constant", 3000)
    assert runs["critical"].method_params["critical"] == "cat"


def test_mitigation_quick_grid_is_cpu_sized():
    runs = [resolve(r) for r in load_grid("mitigation-quick").runs()]
    assert {r.method for r in runs} == MITIGATION
    assert all(r.epochs <= 5 and r.train_limit <= 2000 and r.test_limit <= 1000 for r in runs)
    assert all(r.test_autoattack_spec() is None for r in runs)


def test_test_autoattack_values():
    assert RunConfig(eps=0.1).test_autoattack_spec() is None
    assert RunConfig(eps=0.1, test_autoattack="plus").test_autoattack_spec().label == "aa-plus"
    spec = RunConfig(eps=0.2, norm="l2", test_autoattack={"version": "custom", "attacks": ["apgd-ce"],
                                                         "iterations": 3}).test_autoattack_spec()
    assert (spec.eps, spec.norm, spec.label) == (0.2, "l2", "aa-apgd-ce-l2-quick")
    for bad in ("bogus", {"version": "custom"}, {"eps": 0.3}):
        with pytest.raises((ClasswiseError, ValueError), match="test_autoattack"):  # ValueError: pydantic
            RunConfig(test_autoattack=bad)


def test_a_run_with_test_autoattack_records_it_per_class(tmp_path):
    pytest.importorskip("pyautoattack")
    splits = load_dataset("digits", val_size=0.2, seed=0)
    cfg = RunConfig(dataset="digits", method="standard", epochs=1, train_limit=100, eval_subset=50, eval_steps=1,
                    test_limit=60, test_steps=2, lr=0.05,
                    test_autoattack={"version": "custom", "attacks": ["apgd-ce"], "iterations": 3, "restarts": 1})
    out = execute_run(cfg, tmp_path / "run", device="cpu", splits=splits)
    key = "aa-apgd-ce-quick"
    saved = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert key in saved["adv_pred"] and saved["attacks"][key]["name"] == "autoattack"
    res = out.evaluation
    # AutoAttack keeps a misclassified image's clean prediction: never above clean accuracy, per class
    clean, aa = res.per_class("clean")["accuracy"], res.per_class(key)["accuracy"]
    assert len(res.adv_pred[key]) == 60 and (aa <= clean + 1e-12).all()
