"""How long the study's bootstrap takes: 10,000 test images (10 classes of 1,000), 1,000
resamples, stratified by class and paired across runs (classwise.analysis.stats), against
the goal of 5 seconds on two cores.

    python benchmarks/bootstrap.py            # 3 repetitions of each case
    python benchmarks/bootstrap.py --quick    # 1 repetition

Cases: the default study (2 arms x 2 metrics = 4 runs on the same images: few outcome
patterns) and a large one (8 arms x 3 seeds x 2 metrics x 2 checkpoints = 96 runs: nearly
every image its own pattern, the worst case of the pattern draw), both through
`SeedBootstrap`, which also draws the seeds. A naive loop over resamples with an index
vector per class is timed on the small case for comparison. Prints `RATIO bootstrap_<case>
<goal seconds / measured seconds>` (>= 1 meets the goal) and writes
benchmarks/results/bootstrap.json."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from classwise.analysis.seeds import Evaluation, SeedBootstrap
from classwise.io import atomic_write_json

RESULTS = Path(__file__).parent / "results"
GOAL_SECONDS = 5.0
N_CLASSES, PER_CLASS, RESAMPLES = 10, 1000, 1000


def _evaluations(arms: int, seeds: int, checkpoints: int, rng) -> tuple[list[Evaluation], np.ndarray]:
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    rng.shuffle(labels)
    skill = rng.uniform(0.3, 0.95, N_CLASSES)
    evals = []
    for a in range(arms):
        for s in range(seeds):
            for k in range(checkpoints):
                clean = rng.random(labels.size) < skill[labels]
                robust = clean & (rng.random(labels.size) < 0.7)
                evals.append(Evaluation((f"arm{a}", f"ckpt{k}"), s, labels, {"clean": clean, "robust": robust}))
    return evals, labels


def _naive(evals: list[Evaluation], labels: np.ndarray, resamples: int, rng) -> float:
    """The textbook loop: one index vector per class per resample."""
    t0 = time.perf_counter()
    by_class = [np.flatnonzero(labels == c) for c in range(N_CLASSES)]
    rows = np.stack([c for e in evals for c in e.correct.values()])
    for _ in range(resamples):
        idx = np.concatenate([rng.choice(ix, ix.size) for ix in by_class])
        rows[:, idx].reshape(rows.shape[0], N_CLASSES, -1)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    reps = 1 if args.quick else 3
    rng = np.random.default_rng(0)
    out = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                       "date": time.strftime("%Y-%m-%d %H:%M")},
           "images": N_CLASSES * PER_CLASS, "resamples": RESAMPLES, "goal_seconds": GOAL_SECONDS, "cases": {}}
    for case, shape in {"default_study": (2, 1, 1), "large_study": (8, 3, 2)}.items():
        evals, labels = _evaluations(*shape, rng)
        times = []
        for r in range(reps):
            t0 = time.perf_counter()
            boot = SeedBootstrap(evals, [str(c) for c in range(N_CLASSES)], resamples=RESAMPLES, rng=r)
            boot.difference(("arm0", "ckpt0"), ("arm1", "ckpt0"), "robust")
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
        runs = sum(len(e.correct) for e in evals)
        out["cases"][case] = {"runs": runs, "seconds": times, "median_seconds": seconds}
        if case == "default_study":
            naive = _naive(evals, labels, RESAMPLES, rng)
            out["cases"][case]["naive_loop_seconds"] = naive
            print(f"{case}: naive loop over resamples {naive:.2f}s", flush=True)
        print(f"{case}: {runs} runs x {N_CLASSES * PER_CLASS} images x {RESAMPLES} resamples: "
              f"median {seconds:.3f}s of {reps}", flush=True)
        print(f"RATIO bootstrap_{case} {GOAL_SECONDS / seconds:.3f}", flush=True)
    atomic_write_json(RESULTS / f"bootstrap{'-quick' if args.quick else ''}.json", out)
    print(json.dumps({k: v["median_seconds"] for k, v in out["cases"].items()}))


if __name__ == "__main__":
    main()
