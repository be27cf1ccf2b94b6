"""Hot-loop benchmarks: classwise against the usual PyTorch way (baseline.py), in one process
run, on the same machine, model, batch size and thread count.

    python benchmarks/run.py           # full run (about half an hour on two cores)
    python benchmarks/run.py --quick   # reduced, under two minutes

Each result prints `RATIO <name> <value>` (ours / baseline throughput, baseline / ours time,
or achieved / peak FLOP rate) and lands with every repetition in benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import classwise.progress as progress_mod
from classwise.attacks import AttackSpec
from classwise.config import TrainConfig
from classwise.data import load_dataset, make_synthetic, stratified_subset
from classwise.evaluate import evaluate
from classwise.io import atomic_write_json
from classwise.train import build_model, make_optimizer, make_scheduler, train_epoch

sys.path.insert(0, str(Path(__file__).parent))
import baseline  # noqa: E402

RESULTS = Path(__file__).parent / "results"
EPS_GREY, EPS_COLOUR = 0.1, 8 / 255


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    import torchattacks
    import torchvision

    return {"cpu": cpu, "cores": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "torchattacks": torchattacks.__version__, "numpy": np.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}


def report(name: str, ratio: float, detail: dict, quick: bool) -> None:
    atomic_write_json(RESULTS / f"{name}{'-quick' if quick else ''}.json",
                      {"name": name, "ratio": ratio, "quick": quick, "machine": machine(), **detail})
    print(f"RATIO {name} {ratio:.3f}", flush=True)


def fresh(cfg: TrainConfig, data, channels_last: bool):
    torch.manual_seed(0)
    model = build_model(cfg, data)
    return model.to(memory_format=torch.channels_last) if channels_last else model


# --------------------------------------------------------------------------- training epochs
def bench_train_epoch(name, data, arch, method, eps, reps, quick, bn="eval"):
    cfg = TrainConfig(dataset=data.name, arch=arch, method=method, eps=eps, attack_steps=10, batch_size=128,
                      lr=0.05, weight_decay=5e-4, crop_padding=4, hflip=True, epochs=1, attack_bn=bn)
    ours, base = [], []
    for rep in range(reps + 1):  # the first repetition of each side warms up and is dropped
        model = fresh(cfg, data, channels_last=True)
        opt = make_optimizer(model.parameters(), cfg)
        sched = make_scheduler(opt, cfg, len(data) // cfg.batch_size + 1)
        t = time.perf_counter()
        train_epoch(model, data, cfg, opt, sched, torch.Generator().manual_seed(rep), device="cpu")
        ours.append(len(data) / (time.perf_counter() - t))

        model = fresh(cfg, data, channels_last=False)
        opt = make_optimizer(model.parameters(), cfg)
        sched = make_scheduler(opt, cfg, len(data) // cfg.batch_size + 1)
        dl = baseline.loader(data, cfg.batch_size, train=True, seed=rep)
        t = time.perf_counter()
        baseline.train_epoch(model, dl, opt, sched, method, eps, steps=10, bn=bn)
        base.append(len(data) / (time.perf_counter() - t))
    ours, base = ours[1:], base[1:]
    ratio = statistics.median(ours) / statistics.median(base)
    report(name, ratio, {"unit": "images/s", "images": len(data), "arch": arch, "method": method,
                         "attack_bn": bn, "ours": ours, "baseline": base}, quick)


# --------------------------------------------------------------------------- evaluation
def bench_eval(name, model, test, eps, reps, quick):
    spec = AttackSpec(eps=eps, steps=20)
    ours, base = [], []
    for rep in range(reps):
        t = time.perf_counter()
        res = evaluate(model, test, [spec], batch_size=256, seed=rep, show_progress=False)
        ours.append(len(test) / (time.perf_counter() - t))
        t = time.perf_counter()
        _, b_rob = baseline.evaluate(model, baseline.loader(test, 256, train=False), eps, steps=20)
        base.append(len(test) / (time.perf_counter() - t))
    o_rob = res.per_class(spec.label)["accuracy"].to_numpy()
    n = res.per_class(spec.label)["n"].to_numpy()
    p = np.clip((o_rob + b_rob) / 2, 1e-3, 1 - 1e-3)
    noise = 2.58 * np.sqrt(2 * p * (1 - p) / n)  # 99% two-sample band per class
    weaker = [test.classes[i] for i in np.flatnonzero(o_rob - b_rob > noise)]
    ratio = statistics.median(ours) / statistics.median(base)
    report(name, ratio, {"unit": "images/s", "images": len(test), "ours": ours, "baseline": base,
                         "robust_per_class_ours": o_rob.tolist(), "robust_per_class_baseline": b_rob.tolist(),
                         "classes_where_ours_is_weaker_beyond_noise": weaker}, quick)
    print(f"  {name}: robust accuracy ours {o_rob.mean():.4f}, baseline {b_rob.mean():.4f}; "
          f"classes where ours is weaker beyond noise: {weaker or 'none'}", flush=True)


# --------------------------------------------------------------------------- FLOP rate
def matmul_peak(n=2048, reps=10) -> float:
    """fp32 matmul GFLOP/s with the same threads, median of `reps` (the step uses the median too)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def bench_gflops(data, reps, quick):
    cfg = TrainConfig(dataset=data.name, arch="mnist-cnn", method="standard", eps=EPS_GREY, batch_size=128,
                      crop_padding=0, hflip=False)
    model = fresh(cfg, data, channels_last=True)
    opt = make_optimizer(model.parameters(), cfg)
    x = data.images[:128].float().div(255).contiguous(memory_format=torch.channels_last)
    y = data.labels[:128]

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    for _ in range(5):
        step()
    times = []
    for _ in range(reps * 10):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    achieved = flops / statistics.median(times) / 1e9
    peak = matmul_peak()
    report("train_step_peak_fraction", achieved / peak,
           {"unit": "GFLOP/s", "flops_per_step": flops, "batch": 128, "achieved": achieved, "matmul_peak": peak,
            "step_seconds": times}, quick)


# --------------------------------------------------------------------------- time to target
def bench_time_to_target(splits, target, check_every, val_n, budget_s, quick):
    """Wall time of training (checks excluded) until validation PGD-20 accuracy first reaches
    `target`: our default recipe (FGSM-RS, cyclic lr) vs the baseline loop with PGD-10."""
    val = stratified_subset(splits.val, val_n, seed=0)
    spec = AttackSpec(eps=EPS_GREY, steps=20)
    common = dict(dataset="fashion-mnist", arch="mnist-cnn", eps=EPS_GREY, epochs=3, lr=0.05, weight_decay=0.0,
                  batch_size=128, crop_padding=0, hflip=False)

    def run(side):
        cfg = TrainConfig(method="fgsm-rs" if side == "ours" else "pgd", attack_steps=10, **common)
        model = fresh(cfg, splits.train, channels_last=side == "ours")
        opt = make_optimizer(model.parameters(), cfg)
        sched = make_scheduler(opt, cfg, len(splits.train) // cfg.batch_size + 1)
        clock = {"train": 0.0, "last": time.perf_counter(), "next": check_every, "hit": None, "curve": []}

        def check(seen_total):
            clock["train"] += time.perf_counter() - clock["last"]
            acc = evaluate(model, val, [spec], show_progress=False).accuracy(spec.label)
            model.train()
            clock["curve"].append((seen_total, clock["train"], acc))
            print(f"  {side}: {seen_total} images, {clock['train']:.0f}s training, val PGD-20 {acc:.3f}", flush=True)
            if acc >= target and clock["hit"] is None:
                clock["hit"] = clock["train"]
            clock["last"] = time.perf_counter()
            return clock["hit"] is not None or clock["train"] > budget_s

        done = 0
        for epoch in range(cfg.epochs):
            def on_batch(seen, base=done):
                if base + seen >= clock["next"]:
                    clock["next"] += check_every
                    return check(base + seen)
                return False
            if side == "ours":
                train_epoch(model, splits.train, cfg, opt, sched, torch.Generator().manual_seed(epoch),
                            device="cpu", on_batch=on_batch)
            else:
                _baseline_epoch_with_checks(model, splits.train, opt, sched, cfg, on_batch, epoch)
            done += len(splits.train)
            if clock["hit"] is not None or clock["train"] > budget_s:
                break
        return clock

    ours, base = run("ours"), run("baseline")
    if ours["hit"] is None or base["hit"] is None:
        print(f"  time_to_target: target {target} not reached within the budget "
              f"(ours {ours['hit']}, baseline {base['hit']})", flush=True)
    base_t = base["hit"] if base["hit"] is not None else base["train"]  # a lower bound for the baseline
    ratio = base_t / ours["hit"] if ours["hit"] else float("nan")
    report("time_to_target", ratio, {"target": target, "unit": "seconds", "ours_seconds": ours["hit"],
                                     "baseline_seconds": base["hit"], "baseline_budget_hit": base["hit"] is None,
                                     "ours_curve": ours["curve"], "baseline_curve": base["curve"]}, quick)


def _baseline_epoch_with_checks(model, data, opt, sched, cfg, on_batch, epoch):
    import torch.nn.functional as F

    dl = baseline.loader(data, cfg.batch_size, train=False, seed=epoch)  # the recipe has no augmentation
    dl = torch.utils.data.DataLoader(dl.dataset, batch_size=cfg.batch_size, shuffle=True,
                                     generator=torch.Generator().manual_seed(epoch))
    atk = baseline.make_attack(model, "pgd", cfg.eps, steps=10)
    model.train()
    seen = 0
    for x, y in dl:
        loss = F.cross_entropy(model(atk(x, y)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        seen += len(y)
        if on_batch(seen):
            return


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced sizes, under two minutes")
    ap.add_argument("--only", nargs="*", help="run only these benchmarks (train, eval, gflops, target)")
    args = ap.parse_args(argv)
    progress_mod.QUIET = True
    torch.manual_seed(0)
    q = args.quick
    only = set(args.only or ["train", "eval", "gflops", "target"])
    print(f"machine: {json.dumps(machine())}", flush=True)
    fm = load_dataset("fashion-mnist", val_size=6000, seed=0)
    c_train, c_test = make_synthetic(10, (3, 32, 32), n_train=6000, n_test=1000, seed=0, name="cifar-shaped")
    reps = 1 if q else 3

    if "train" in only:
        for data_name, data, arch, eps, n_pgd, n_fgsm in (
                ("fmnist", fm.train, "mnist-cnn", EPS_GREY, 512 if q else 6000, 1024 if q else 12000),
                ("resnet20", c_train, "resnet20", EPS_COLOUR, 128 if q else 1500, 384 if q else 4000)):
            for method, n in (("pgd", n_pgd), ("fgsm-rs", n_fgsm)):
                sub = stratified_subset(data, n, seed=0)
                bench_train_epoch(f"train_epoch_{data_name}_{method}", sub, arch, method, eps, reps, q)
                if arch == "resnet20":  # BatchNorm: also the train-mode crafting of Madry / Wong
                    bench_train_epoch(f"train_epoch_{data_name}_{method}_bntrain", sub, arch, method, eps, reps, q,
                                      bn="train")
    if "eval" in only:
        cfg = TrainConfig(dataset="fashion-mnist", epochs=1, lr=0.05, weight_decay=0.0, crop_padding=0,
                          hflip=False, eps=EPS_GREY)
        sub = stratified_subset(fm.train, 8000 if q else 54000, seed=0)
        models = {}
        for kind, method in (("standard", "standard"), ("adversarial", "fgsm-rs")):
            c = cfg.model_copy(update={"method": method, "epochs": 1 if q else 2})
            model = fresh(c, sub, channels_last=True)
            opt = make_optimizer(model.parameters(), c)
            sched = make_scheduler(opt, c, len(sub) // c.batch_size + 1)
            for e in range(c.epochs):
                train_epoch(model, sub, c, opt, sched, torch.Generator().manual_seed(e), device="cpu")
            models[kind] = model.to(memory_format=torch.contiguous_format).eval()
        test = stratified_subset(fm.test, 500 if q else 5000, seed=0)
        for kind, model in models.items():
            bench_eval(f"eval_pgd20_{kind}", model, test, EPS_GREY, 1 if q else 3, q)
    if "gflops" in only:
        bench_gflops(fm.train, reps, q)
    if "target" in only:
        if q:
            bench_time_to_target(fm, target=0.45, check_every=2048, val_n=300, budget_s=25, quick=q)
        else:
            bench_time_to_target(fm, target=0.65, check_every=6400, val_n=2000, budget_s=3600, quick=q)
    return 0


if __name__ == "__main__":
    sys.exit(main())
