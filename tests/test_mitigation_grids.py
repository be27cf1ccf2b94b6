"""The mitigation grids (every training objective side by side; the paper one in CFA's Table 1
setting) and AutoAttack per run in a sweep's final evaluation."""

import json

import pytest

from classwise.data import load_dataset
from classwise.errors import ClasswiseError
from classwise.study.execute import execute_run, resolve
from classwise.study.grid import RunConfig, load_grid
from classwise.train import OBJECTIVES

MITIGATION = {"pgd", "trades", "weighted", "class-balanced", "ldam-drw", "critical", "targeted", "cosine-reg",
              "frl", "fat-var", "cfa", "wat", "dafa"}


def test_mitigation_paper_grid_is_cfas_table_1_setting():
    runs = [resolve(r) for r in load_grid("mitigation-paper").runs()]
    assert {r.method for r in runs} == MITIGATION and set(OBJECTIVES) >= MITIGATION
    for r in runs:
        assert (r.dataset, r.arch, r.epochs, r.optimizer, r.lr, r.momentum, r.weight_decay) == \
            ("cifar10", "preact-resnet18", 200, "sgd", 0.1, 0.9, 5e-4)
        assert r.eps == pytest.approx(8 / 255) and r.attack_alpha == pytest.approx(2 / 255) and r.attack_steps == 10
        assert r.val_size == 0.02 and r.milestones == [100, 150] and r.test_steps == 20
        assert r.test_autoattack_spec().version == "standard"
    assert next(r for r in runs if r.method == "critical").method_params["critical"] == "cat"


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
