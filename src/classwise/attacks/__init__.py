"""Attacks: FGSM and PGD (Linf/L2, random start, targeted, CE or margin loss)."""

from .core import AttackOutput, attack_loss, channels_last, eval_mode, perturb
from .spec import AttackSpec, attack

__all__ = ["AttackOutput", "AttackSpec", "attack", "attack_loss", "channels_last", "eval_mode", "perturb"]
