"""Attacks: FGSM and PGD (Linf/L2, random start, targeted, CE, margin or TRADES's KL loss),
AutoAttack through its authors' package, and class-targeted threats. Their per-class views
(eps curves, where a victim's images go) read evaluation results: `classwise.evaluation.views`."""

from .autoattack import AutoAttackSpec, run_autoattack
from .core import AttackOutput, attack_loss, channels_last, eval_mode, perturb
from .spec import AttackSpec, attack
from .threats import IntoClassSpec, VictimSpec

__all__ = ["AttackOutput", "AttackSpec", "AutoAttackSpec", "IntoClassSpec", "VictimSpec", "attack", "attack_loss",
           "channels_last", "eval_mode", "perturb", "run_autoattack"]
