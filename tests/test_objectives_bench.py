"""benchmarks/objectives.py on a few synthetic images, so that it cannot rot between runs: every
adversarial objective of the registry is planned against its base and goes through the timed
epoch (the epoch-end updates of a run, its own validation attacks) without an error."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import objectives as bench  # noqa: E402

from classwise.data import make_synthetic  # noqa: E402
from classwise.training.objectives import OBJECTIVES  # noqa: E402


def test_every_objective_goes_through_the_timed_epoch(monkeypatch):
    monkeypatch.setattr(bench, "EPOCHS", 3)
    data, val_data = make_synthetic(n_train=64, n_test=40, name="fashion-mnist")
    val, key = bench.validation(data, val_data)
    planned = bench.plan(None, data)
    expected = {n for n, c in OBJECTIVES.items() if c.adversarial and n not in bench.BASES}
    assert {name for name, _, _ in planned} == expected
    for name, params, base in planned:
        assert base in bench.BASES
        assert bench.epoch_seconds(name, params, data, val, val_data, key, 0) > 0, name
