"""A study's arms share the run config but not what each method decides: the attack step and
the BatchNorm mode its released code trains with."""

from __future__ import annotations

import pytest

from classwise.config.methods import STEP
from classwise.config.study import StudyConfig
from classwise.data import Splits, make_synthetic, split
from classwise.study.arms import arm_config, shared_run
from classwise.training.resolve import resolve


@pytest.fixture(scope="module")
def splits() -> Splits:
    train, test = make_synthetic(n_train=100, n_test=20)
    return split(train, test, val_size=0.2, seed=0)


def test_each_arm_crafts_with_its_own_methods_step_and_batchnorm(splits, tmp_path):
    cfg = StudyConfig(methods=["standard", "fgsm-rs", "trades", "cfa", "weighted"],
                      method_params={"cfa": {"base": "pgd"}, "weighted": {"base": "fgsm-rs"}},
                      run={"dataset": "synthetic", "eps": 0.1})
    shared = shared_run(cfg.run, splits)
    assert shared.eps == 0.1 and shared.crop_padding == 0  # the data's defaults, once
    arms = {arm: resolve(arm_config(cfg, shared, arm, 0, tmp_path, check_source=False), splits) for arm in cfg.arms}
    assert arms["fgsm-rs"].attack_alpha == pytest.approx(STEP["fgsm-rs"] * 0.1)  # Wong et al.'s 1.25 eps
    assert arms["weighted"].attack_alpha == pytest.approx(STEP["fgsm-rs"] * 0.1)  # its base's
    assert arms["trades"].attack_alpha == pytest.approx(STEP["trades"] * 0.1)  # 0.007 at 0.031
    assert arms["standard"].attack_alpha == pytest.approx(STEP["pgd"] * 0.1)
    assert arms["cfa"].attack_bn == "train" and arms["trades"].attack_bn == "eval"  # CFA's PGD-AT crafts in train mode


def test_a_step_the_study_gives_is_every_arms(splits, tmp_path):
    cfg = StudyConfig(methods=["fgsm-rs", "trades"], run={"dataset": "synthetic", "eps": 0.1, "attack_alpha": 0.01})
    shared = shared_run(cfg.run, splits)
    assert {resolve(arm_config(cfg, shared, a, 0, tmp_path, check_source=False), splits).attack_alpha
            for a in cfg.arms} == {0.01}


def test_the_time_estimate_times_each_arm_as_it_will_run(splits):
    """The estimate builds each arm from the shared run config: resolved per arm, a DAFA or TRADES
    arm (whose step scales the method's own) is timed, not stopped by a step left open."""
    from classwise.estimate_training import estimate_study

    cfg = StudyConfig(methods=["standard", "trades", "dafa"],
                      run={"dataset": "synthetic", "eps": 0.1, "epochs": 2, "batch_size": 16, "eval_subset": 10,
                           "eval_steps": 1, "test_steps": 1, "attack_steps": 2})
    cfg = cfg.model_copy(update={"run": shared_run(cfg.run, splits)})
    arms, total = estimate_study(cfg, splits, "cpu")
    assert [a.label for a in arms] == ["standard", "trades", "dafa"] and total > 0
    assert all(a.seconds > 0 for a in arms)
