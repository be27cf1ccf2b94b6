"""What the explain pass costs the evaluation: per-class PGD-20 evaluation of the Fashion-MNIST
CNN with the per-class sums (logits, softmax, loss, and the penultimate features from a hook
on the last nn.Linear) against the same evaluation without them (`class_sums=False`).

    python benchmarks/explain.py            # 2,000 test images, 3 repetitions per side
    python benchmarks/explain.py --quick    # 500 images, 2 repetitions

Models: a standard and an FGSM-RS CNN trained here (untimed, 2,000 images, 1 epoch), or
`--checkpoint model.pt` (a classwise model.pt). Each side runs in a fresh child process, the
two sides alternating. Prints `RATIO explain_overhead <with / without CPU time>` (goal <= 1.05;
the standard model is the harder case: its attacks stop early, so the extra forward pass of
the adversarial examples weighs more) and writes benchmarks/results/explain.json."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from classwise.attacks import AttackSpec
from classwise.config import TrainConfig
from classwise.data import load_dataset, stratified_subset
from classwise.evaluation import evaluate
from classwise.io import atomic_write_json
from classwise.training import build_model, make_optimizer, make_scheduler, train_epoch

RESULTS = Path(__file__).parent / "results"
EPS = 0.1


def _cfg(method: str) -> TrainConfig:
    return TrainConfig(dataset="fashion-mnist", method=method, epochs=1, lr=0.05, weight_decay=0.0, crop_padding=0,
                       hflip=False, eps=EPS)


def train_models(folder: Path) -> dict[str, str]:
    train = stratified_subset(load_dataset("fashion-mnist").train, 2000, seed=0)
    out = {}
    for kind in ("standard", "fgsm-rs"):
        cfg = _cfg(kind)
        torch.manual_seed(0)
        model = build_model(cfg, train)
        opt = make_optimizer(model.parameters(), cfg)
        sched = make_scheduler(opt, cfg, len(train) // cfg.batch_size + 1)
        train_epoch(model, train, cfg, opt, sched, torch.Generator().manual_seed(0), device="cpu")
        out[kind] = str(folder / f"{kind}.pt")
        torch.save(model.state_dict(), out[kind])
    return out


def child(arg: str) -> None:
    job = json.loads(arg)
    data = load_dataset("fashion-mnist")
    model = build_model(_cfg("standard"), data.train)
    state = torch.load(job["weights"], map_location="cpu", weights_only=True)
    model.load_state_dict(state.get("state_dict", state))
    model.eval()
    test = stratified_subset(data.test, job["n"], seed=0)
    spec = [AttackSpec(eps=EPS, steps=20)]
    evaluate(model, test.subset(np.arange(256)), spec, class_sums=job["sums"], show_progress=False)  # warm-up
    t, cpu = time.perf_counter(), time.process_time()
    res = evaluate(model, test, spec, seed=job["rep"], class_sums=job["sums"], show_progress=False)
    print(json.dumps({"seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - cpu,
                      "robust": res.accuracy("pgd20"),
                      "has_features": "features" in res.class_sums.get("pgd20", {})}))


def run_child(job: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--checkpoint", help="a classwise model.pt of the Fashion-MNIST CNN (default: train two here)")
    ap.add_argument("--only", choices=["standard", "fgsm-rs"], help="time one of the two trained models")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return 0
    n, reps = (500, 2) if args.quick else (2000, 3)
    with tempfile.TemporaryDirectory() as tmp:
        models = {"checkpoint": args.checkpoint} if args.checkpoint else train_models(Path(tmp))
        if args.only:
            models = {args.only: models[args.only]}
        detail = {}
        for kind, weights in models.items():
            times = {True: [], False: []}
            cpu = {True: [], False: []}
            for rep in range(reps):
                for sums in (True, False) if rep % 2 == 0 else (False, True):
                    r = run_child({"weights": weights, "n": n, "rep": rep, "sums": sums})
                    times[sums].append(r["seconds"])
                    cpu[sums].append(r["cpu_seconds"])
                    if sums and not r["has_features"]:
                        raise RuntimeError("the evaluation with sums collected no penultimate features")
            # CPU seconds of the evaluating process: on a shared machine wall time mostly measures
            # the neighbours; both are kept
            ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
            detail[kind] = {"with_sums_cpu_s": cpu[True], "without_sums_cpu_s": cpu[False], "ratio": ratio,
                            "with_sums_wall_s": times[True], "without_sums_wall_s": times[False],
                            "wall_ratio": statistics.median(times[True]) / statistics.median(times[False]),
                            "robust_accuracy": r["robust"]}
            wall = detail[kind]["wall_ratio"]
            print(f"  {kind}: CPU with sums {statistics.median(cpu[True]):.2f}s, without "
                  f"{statistics.median(cpu[False]):.2f}s, ratio {ratio:.3f} (wall ratio {wall:.3f})", flush=True)
    headline = max(d["ratio"] for d in detail.values())
    atomic_write_json(RESULTS / f"explain{'-quick' if args.quick else ''}.json",
                      {"name": "explain_overhead", "ratio": headline, "goal": "<= 1.05", "images": n, "reps": reps,
                       "attack": "pgd20 linf eps 0.1", "threads": torch.get_num_threads(),
                       "date": time.strftime("%Y-%m-%d %H:%M"), "models": detail})
    print(f"RATIO explain_overhead {headline:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
