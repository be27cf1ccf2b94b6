"""Each training objective's epoch time over its base method's (PGD-AT, TRADES or FGSM-RS) on
the Fashion-MNIST CNN, in one run, sides alternating (base, objective, objective, base in each
round, so that a drift in the machine's load hits both alike).

    python benchmarks/objectives.py            # every adversarial objective, 2048 images, 3 rounds
    python benchmarks/objectives.py --quick    # 512 images, 2 rounds
    python benchmarks/objectives.py --only cfa,dafa

The list comes from the registry: every adversarial objective that is not itself a base, timed
against the base its `base` parameter names (PGD-AT when it has none). An objective whose
defaults do not validate on their own (a required class) gives `benchmark_params`.

What is timed is what a training epoch adds: the epoch over the images plus the objective's
epoch-end update, and the objective's own validation attack (WAT's TRADES attack, FRL's PGD-20,
CFA's PGD-10: `Objective.validation_attacks`) on a validation subset in the trainer's proportion
(its default check, 1,000 images against 54,000 training images: 1 in 50). The trainer's own
check (the same for both sides) is run once, untimed, beforehand; before timing, the objective
goes through the epoch-end updates of a whole run with it, so warm-ups are over and per-class
eps, weights and averages are in force. Prints `RATIO objective_<name> <objective time / base time>` (goal
<= 1.1 for the reweighting methods) and writes benchmarks/results/objectives.json, a dated row
an objective (`--only` replaces its objectives' rows and keeps the rest).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

from classwise.attacks import AttackSpec
from classwise.config import TrainConfig
from classwise.data import load_dataset, stratified_subset
from classwise.errors import ClasswiseError
from classwise.evaluation import evaluate
from classwise.io import atomic_write_json
from classwise.training import build_model, make_optimizer, make_scheduler, train_epoch
from classwise.training.objectives import OBJECTIVES
from classwise.training.trainer import objective_for

RESULTS = Path(__file__).parent / "results"
BASES = ("pgd", "trades", "fgsm-rs")  # methods others build on, not timed against themselves
EPOCHS = 10  # the run length the objectives' schedules see; timing is of its last epoch


def plan(only: list[str] | None, data) -> list[tuple[str, dict, str]]:
    """(objective, its params, its base) for every adversarial objective in the registry."""
    out = []
    for name, cls in OBJECTIVES.items():
        if not cls.adversarial or name in BASES or (only and name not in only):
            continue
        params = dict(getattr(cls, "benchmark_params", {}))
        try:
            cfg = config(name, params)
            objective_for(cfg, data)  # some check their parameters against the classes
            resolved = cfg.method_params
        except ClasswiseError as exc:
            print(f"skip {name}: {exc} (give it benchmark_params)", flush=True)
            continue
        out.append((name, params, resolved.get("base", "pgd")))
    return out


def config(method: str, params: dict) -> TrainConfig:
    """The run config, resolved as a run's is (the attack step and BatchNorm mode of the method's code)."""
    return TrainConfig(dataset="fashion-mnist", method=method, method_params=params, eps=0.1, attack_steps=10,
                       batch_size=128, lr=0.05, weight_decay=5e-4, crop_padding=0, hflip=False, epochs=EPOCHS,
                       eval_subset=500, eval_steps=10).resolved(grey=True)


def with_attacks(val, extra):
    """`val` with the results of more attacks on the same images added."""
    return dataclasses.replace(val, adv_pred={**val.adv_pred, **extra.adv_pred},
                               attacks={**val.attacks, **extra.attacks},
                               class_sums={**val.class_sums, **extra.class_sums})


def validation(data, val_data) -> tuple:
    """One validation EvalResult of a briefly trained model, as the trainer's epoch-end pass."""
    cfg = config("pgd", {})
    torch.manual_seed(0)
    model = build_model(cfg, data)
    opt = make_optimizer(model.parameters(), cfg)
    train_epoch(model, data, cfg, opt, make_scheduler(opt, cfg, len(data) // 128 + 1), torch.Generator().manual_seed(0),
                device="cpu", objective=objective_for(cfg, data))
    spec = AttackSpec(name="pgd", eps=cfg.eps, steps=cfg.eval_steps)
    return evaluate(model, val_data, [spec], batch_size=512, device="cpu", show_progress=False), spec.label


def epoch_seconds(method: str, params: dict, data, val, val_data, key: str, rep: int) -> float:
    cfg = config(method, params)
    torch.manual_seed(rep)
    model = build_model(cfg, data).to(memory_format=torch.channels_last)
    opt = make_optimizer(model.parameters(), cfg)
    sched = make_scheduler(opt, cfg, len(data) // cfg.batch_size + 1)
    objective = objective_for(cfg, data)
    gen = torch.Generator().manual_seed(rep)
    # one batch first (kernel selection, first touch of memory), which also gives averaging
    # objectives a model; then the epoch-end updates of a run up to its last epoch
    train_epoch(model, data, cfg, opt, sched, gen, device="cpu", objective=objective, epoch=1,
                on_batch=lambda seen: seen >= cfg.batch_size)
    own = objective.validation_attacks()
    if own:  # its own attacks' results, from this model, for the updates before the timed epoch
        val = with_attacks(val, evaluate(model, val_data, own, batch_size=512, device="cpu", show_progress=False))
    for e in range(1, EPOCHS):
        objective.end_epoch(e, val, key)
    t = time.perf_counter()
    train_epoch(model, data, cfg, opt, sched, gen, device="cpu", objective=objective, epoch=EPOCHS)
    if own:
        val = with_attacks(val, evaluate(model, val_data, own, batch_size=512, device="cpu", show_progress=False))
    objective.end_epoch(EPOCHS, val, key)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="512 images, 2 rounds")
    ap.add_argument("--images", type=int, default=None, help="training images per timed epoch (default 2048)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of base, objective, objective, base")
    ap.add_argument("--only", default=None, help="comma-separated objectives")
    args = ap.parse_args()
    n = args.images or (512 if args.quick else 2048)
    rounds = args.rounds or (2 if args.quick else 3)
    splits = load_dataset("fashion-mnist", val_size=6000, seed=0)
    data = stratified_subset(splits.train, n, seed=0)
    val_data = stratified_subset(splits.val, max(20, n // 50), seed=0)
    val, key = validation(data, val_data)
    results = {}
    for name, params, base in plan(args.only.split(",") if args.only else None, data):
        times = {"base": [], "objective": []}
        for r in range(rounds):
            for side in ("base", "objective", "objective", "base"):
                method, p = (base, {}) if side == "base" else (name, params)
                times[side].append(epoch_seconds(method, p, data, val, val_data, key, r))
        ratio = statistics.median(times["objective"]) / statistics.median(times["base"])
        results[name] = {"base": base, "params": params, "ratio": ratio, "images": n, "rounds": rounds,
                         "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M"),
                         **{f"{k}_seconds": v for k, v in times.items()}}
        print(f"RATIO objective_{name} {ratio:.3f}", flush=True)
    path = RESULTS / f"objectives{'-quick' if args.quick else ''}.json"
    # a run of some objectives (--only) replaces their rows and keeps the others', each row dated
    kept = json.loads(path.read_text())["objectives"] if args.only and path.exists() else {}
    atomic_write_json(path, {"epochs_seen": EPOCHS, "goal": 1.1, "objectives": {**kept, **results}})


if __name__ == "__main__":
    main()
