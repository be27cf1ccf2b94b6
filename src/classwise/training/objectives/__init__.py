"""Training objectives: one registered class a method, one file each, named for its paper.

An objective crafts the inputs it trains on, computes its own loss, updates its per-class
state from the validation result at each epoch end, and saves that state in the checkpoint.
Every module of this package is imported here, so a new method is a new file."""

from __future__ import annotations

import importlib
import pkgutil

from .base import OBJECTIVES, Objective, Step, make_objective, register_objective

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["OBJECTIVES", "Objective", "Step", "make_objective", "register_objective"]
