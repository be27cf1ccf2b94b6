"""Attacks: FGSM and PGD (Linf/L2, random start, targeted, CE or margin loss), AutoAttack
through its authors' package, and class-targeted threats."""

from .autoattack import AutoAttackSpec, run_autoattack
from .core import AttackOutput, attack_loss, channels_last, eval_mode, perturb
from .spec import AttackSpec, attack
from .threats import (
    IntoClassSpec,
    VictimSpec,
    curve_table,
    eps_curve,
    half_accuracy_eps,
    into_table,
    victim_summary,
    victim_table,
)

__all__ = ["AttackOutput", "AttackSpec", "AutoAttackSpec", "IntoClassSpec", "VictimSpec", "attack", "attack_loss",
           "channels_last", "curve_table", "eps_curve", "eval_mode", "half_accuracy_eps", "into_table", "perturb",
           "run_autoattack", "victim_summary", "victim_table"]
