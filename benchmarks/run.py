"""Hot-loop benchmarks: classwise against the usual PyTorch way (baseline.py), in one process
run, on the same machine, model, batch size and thread count.

    python benchmarks/run.py           # full run (about an hour on two cores)
    python benchmarks/run.py --quick   # reduced, under two minutes

Each result prints `RATIO <name> <value>` (ours / baseline throughput, baseline / ours time,
or achieved / peak FLOP rate) and lands with every repetition in benchmarks/results/<name>.json.

Every timed side runs in a fresh child process, the two sides' repetitions alternating: nothing
one side does to the process (classwise's allocator setting, oneDNN's kernel cache, thread
pools) can help or hurt the other.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import classwise.progress as progress_mod
from classwise.attacks import AttackSpec
from classwise.config import TrainConfig
from classwise.data import load_dataset, make_synthetic, stratified_subset
from classwise.evaluation import evaluate
from classwise.heap import heap_kept
from classwise.io import atomic_write_json
from classwise.training import build_model, make_optimizer, make_scheduler, train_epoch

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


# --------------------------------------------------------------------------- child processes
def in_child(side: str, jobs: list[dict]) -> list[dict]:
    """Run `jobs` for one side in a fresh interpreter; what each job measured, in order."""
    arg = json.dumps({"side": side, "jobs": jobs})
    out = subprocess.run([sys.executable, __file__, "--child", arg], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"benchmark child ({side}) failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def alternate(sides: dict[str, dict], jobs: list[dict], reps: int, after_round=None) -> dict[str, list[dict]]:
    """`reps` rounds of one child per side, sides alternating within a round; a job marked
    `once` runs in the first round only. For each side, per round: {job name: measurement}.
    `after_round(runs so far)` is called as each round ends, so that a stopped run keeps what it measured."""
    out = {name: [] for name in sides}
    for rep in range(reps):
        for name, opts in sides.items():
            todo = [{**j, "rep": rep, "heap": opts.get("heap", False)} for j in jobs if rep == 0 or not j.get("once")]
            got = in_child(opts["side"], todo)
            out[name].append({j["name"]: r for j, r in zip(todo, got, strict=True)})
        if after_round is not None:
            after_round(out)
    return out


_DATA: dict = {}


def dataset(name: str, n: int | None = None):
    """The benchmark's data, loaded once per process: Fashion-MNIST, or CIFAR-shaped synthetic."""
    if name not in _DATA:
        _DATA[name] = (load_dataset("fashion-mnist", val_size=6000, seed=0) if name == "fmnist" else
                       make_synthetic(10, (3, 32, 32), n_train=6000, n_test=1000, seed=0, name="cifar-shaped")[0])
    d = _DATA[name]
    return d if n is None else stratified_subset(d.train if name == "fmnist" else d, n, seed=0)


def fresh(cfg: TrainConfig, data, channels_last: bool):
    torch.manual_seed(0)
    model = build_model(cfg, data)
    return model.to(memory_format=torch.channels_last) if channels_last else model


# --------------------------------------------------------------------------- training epochs
def train_cfg(job) -> TrainConfig:
    return TrainConfig(dataset=job["data"], arch=job["arch"], method=job["method"], eps=job["eps"], attack_steps=10,
                       batch_size=128, lr=0.05, weight_decay=5e-4, crop_padding=4, hflip=True, epochs=1,
                       attack_bn=job["bn"])


# the convolution and matmul kernels: both sides call oneDNN's for them, so no loop around them
# can beat the baseline by more than the baseline's time over ours inside them
KERNEL_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::mm", "aten::addmm", "aten::bmm")


def child_train(side: str, job: dict) -> dict:
    """Images/s of one adversarial-training epoch; one batch on a throwaway model first, so
    that kernel selection and first-touch of memory are not timed. Ours also reports the seconds
    an image spends inside the convolution and matmul kernels (from a profiled part-epoch)."""
    cfg, data = train_cfg(job), dataset(job["data"], job["n"])
    gen = torch.Generator().manual_seed(job["rep"])

    def epoch(limit=None) -> tuple[int, float]:
        model = fresh(cfg, data, channels_last=side == "ours")
        opt = make_optimizer(model.parameters(), cfg)
        sched = make_scheduler(opt, cfg, len(data) // cfg.batch_size + 1)
        seen = [len(data)]

        def stop(n):
            seen[0] = n
            return limit is not None and n >= limit

        t = time.perf_counter()
        if side == "ours":
            train_epoch(model, data, cfg, opt, sched, gen, device="cpu", on_batch=stop)
        else:
            with heap_kept() if job["heap"] else nullcontext():
                seen[0] = baseline.train_epoch(model, baseline.loader(data, cfg.batch_size, train=True,
                                                                      seed=job["rep"]),
                                               opt, sched, cfg.method, cfg.eps, steps=10, bn=cfg.attack_bn,
                                               limit=limit)
        return seen[0], time.perf_counter() - t

    epoch(limit=cfg.batch_size)
    images, seconds = epoch()
    out = {"images_per_s": images / seconds}
    if side == "ours":
        with torch.profiler.profile() as prof:
            images, _ = epoch(limit=4 * cfg.batch_size)
        kernel_us = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in KERNEL_OPS)
        out["kernel_s_per_image"] = kernel_us / 1e6 / images
    return out


def report_train(job: dict, runs: dict, quick: bool) -> None:
    ours = [r[job["name"]]["images_per_s"] for r in runs["ours"]]
    base = [r[job["name"]]["images_per_s"] for r in runs["baseline"]]
    detail = {"unit": "images/s", "images": job["n"], "arch": job["arch"], "method": job["method"],
              "attack_bn": job["bn"], "ours": ours, "baseline": base}
    heap = [r[job["name"]]["images_per_s"] for r in runs.get("baseline_heap", []) if job["name"] in r]
    if heap:  # how much of the ratio the allocator setting alone explains
        detail["baseline_with_classwise_heap"] = heap
    kernel = statistics.median(r[job["name"]]["kernel_s_per_image"] for r in runs["ours"])
    # the most any loop could gain at these kernels' speed: the baseline's whole time an image
    # over ours inside the convolutions and matmuls alone
    detail["kernel_s_per_image"] = kernel
    detail["ceiling_at_these_kernels"] = 1 / statistics.median(base) / kernel
    report(job["name"], statistics.median(ours) / statistics.median(base), detail, quick)
    print(f"  {job['name']}: {kernel * statistics.median(ours):.0%} of our time is in the convolution and matmul "
          f"kernels; at their speed no loop exceeds {detail['ceiling_at_these_kernels']:.2f}x", flush=True)
    if heap:
        print(f"  {job['name']}: ours / (baseline inside classwise's heap setting) = "
              f"{statistics.median(ours) / statistics.median(heap):.3f}", flush=True)


# --------------------------------------------------------------------------- evaluation
def eval_cfg(method: str, quick: bool) -> TrainConfig:
    return TrainConfig(dataset="fashion-mnist", method=method, epochs=1 if quick else 2, lr=0.05, weight_decay=0.0,
                       crop_padding=0, hflip=False, eps=EPS_GREY)


def child_eval(side: str, job: dict) -> dict:
    """Images/s of clean + per-class PGD-20 evaluation, and the per-class robust accuracy."""
    fm = dataset("fmnist")
    model = build_model(eval_cfg("standard", True), fm.train)
    model.load_state_dict(torch.load(job["weights"], weights_only=True))
    model.eval()
    test = stratified_subset(fm.test, job["n"], seed=0)

    def run(data):
        if side == "ours":
            res = evaluate(model, data, [AttackSpec(eps=EPS_GREY, steps=20)], batch_size=256, seed=job["rep"],
                           show_progress=False)
            return res.per_class(res.robust_keys[0])["accuracy"].to_numpy()
        return baseline.evaluate(model, baseline.loader(data, 256, train=False), EPS_GREY, steps=20)[1]

    run(test.subset(np.arange(min(256, len(test)))))
    t = time.perf_counter()
    robust = run(test)
    return {"images_per_s": len(test) / (time.perf_counter() - t), "robust_per_class": robust.tolist(),
            "n_per_class": np.bincount(test.labels.numpy(), minlength=10).tolist()}


def train_eval_models(folder: Path, quick: bool) -> dict[str, str]:
    """A standard and an FGSM-RS model, trained here (untimed), saved for the children."""
    sub = stratified_subset(dataset("fmnist").train, 2000 if quick else 54000, seed=0)
    paths = {}
    for kind, method in (("standard", "standard"), ("adversarial", "fgsm-rs")):
        cfg = eval_cfg(method, quick)
        model = fresh(cfg, sub, channels_last=True)
        opt = make_optimizer(model.parameters(), cfg)
        sched = make_scheduler(opt, cfg, len(sub) // cfg.batch_size + 1)
        for e in range(cfg.epochs):
            train_epoch(model, sub, cfg, opt, sched, torch.Generator().manual_seed(e), device="cpu")
        paths[kind] = str(folder / f"{kind}.pt")
        torch.save(model.to(memory_format=torch.contiguous_format).state_dict(), paths[kind])
    return paths


def report_eval(job: dict, runs: dict, quick: bool) -> None:
    name = job["name"]
    ours = [r[name]["images_per_s"] for r in runs["ours"]]
    base = [r[name]["images_per_s"] for r in runs["baseline"]]
    o_rob = np.mean([r[name]["robust_per_class"] for r in runs["ours"]], axis=0)
    b_rob = np.mean([r[name]["robust_per_class"] for r in runs["baseline"]], axis=0)
    count = np.array(runs["ours"][0][name]["n_per_class"]) * len(ours)
    p = np.clip((o_rob + b_rob) / 2, 1e-3, 1 - 1e-3)
    noise = 2.58 * np.sqrt(2 * p * (1 - p) / count)  # 99% two-sample band per class
    weaker = [dataset("fmnist").classes[c] for c in np.flatnonzero(o_rob - b_rob > noise)]
    report(name, statistics.median(ours) / statistics.median(base),
           {"unit": "images/s", "images": job["n"], "ours": ours, "baseline": base,
            "robust_per_class_ours": o_rob.tolist(), "robust_per_class_baseline": b_rob.tolist(),
            "classes_where_ours_is_weaker_beyond_noise": weaker}, quick)
    print(f"  {name}: robust accuracy ours {o_rob.mean():.4f}, baseline {b_rob.mean():.4f}; "
          f"classes where ours is weaker beyond noise: {weaker or 'none'}", flush=True)


# --------------------------------------------------------------------------- FLOP rate
def matmul_timer(n=2048):
    """A function that times one fp32 n x n matmul with the process's threads and returns its
    GFLOP/s (warmed up here)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b

    def once() -> float:
        t = time.perf_counter()
        a @ b
        return 2 * n**3 / (time.perf_counter() - t) / 1e9
    return once


# the networks whose plain training step is set against the matmul peak: (arch, data, result name)
PEAK_NETS = [("mnist-cnn", "fmnist", "train_step_peak_fraction"),
             ("resnet20", "cifar", "train_step_peak_fraction_resnet20"),
             ("airbench-half", "cifar", "train_step_peak_fraction_airbench-half")]


def bench_gflops(data, reps, quick, arch="mnist-cnn", name="train_step_peak_fraction"):
    """GFLOP/s of a plain training step (forward, backward, SGD; BatchNorm in train mode) on 128
    images, as a share of the fp32 matmul peak, a matmul timed after each step with the same threads."""
    cfg = TrainConfig(dataset=data.name, arch=arch, method="standard", eps=EPS_GREY, batch_size=128,
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
    with heap_kept():  # the setting train_epoch runs its steps in; the peak gets it too
        for _ in range(5):
            step()
        # a matmul after every step: this machine's speed drifts 2-3x within minutes; with the
        # peak timed once after all the steps the same code gave the MNIST CNN 0.27 and 1.00
        matmul, times, peaks = matmul_timer(), [], []
        for _ in range(reps * 10):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
            peaks.append(matmul())
        peak = statistics.median(peaks)
    achieved = flops / statistics.median(times) / 1e9
    report(name, achieved / peak,
           {"unit": "GFLOP/s", "arch": arch, "flops_per_step": flops, "batch": 128, "achieved": achieved,
            "matmul_peak": peak, "step_seconds": times, "matmul_gflops": peaks}, quick)
    print(f"  {name}: {arch} {achieved:.1f} GFLOP/s of a {peak:.1f} GFLOP/s fp32 matmul peak", flush=True)


# --------------------------------------------------------------------------- time to target
def child_target(side: str, job: dict) -> dict:
    """Training wall time (checks excluded) until validation PGD-20 accuracy first reaches the
    target: our default recipe (FGSM-RS, cyclic lr) or the baseline loop with PGD-10."""
    splits = dataset("fmnist")
    val = stratified_subset(splits.val, job["val_n"], seed=0)
    spec = AttackSpec(eps=EPS_GREY, steps=20)
    cfg = TrainConfig(dataset="fashion-mnist", arch="mnist-cnn", method="fgsm-rs" if side == "ours" else "pgd",
                      attack_steps=10, eps=EPS_GREY, epochs=3, lr=0.05, weight_decay=0.0, batch_size=128,
                      crop_padding=0, hflip=False)
    model = fresh(cfg, splits.train, channels_last=side == "ours")
    opt = make_optimizer(model.parameters(), cfg)
    sched = make_scheduler(opt, cfg, len(splits.train) // cfg.batch_size + 1)
    clock = {"train": 0.0, "last": time.perf_counter(), "next": job["check_every"], "hit": None, "curve": []}

    def check(seen_total):
        clock["train"] += time.perf_counter() - clock["last"]
        acc = evaluate(model, val, [spec], show_progress=False).accuracy(spec.label)
        model.train()
        clock["curve"].append((seen_total, clock["train"], acc))
        print(f"  {side}: {seen_total} images, {clock['train']:.0f}s training, val PGD-20 {acc:.3f}",
              file=sys.stderr, flush=True)
        if acc >= job["target"] and clock["hit"] is None:
            clock["hit"] = clock["train"]
        clock["last"] = time.perf_counter()
        return clock["hit"] is not None or clock["train"] > job["budget_s"]

    done = 0
    for epoch in range(cfg.epochs):
        def on_batch(seen, base=done):
            if base + seen >= clock["next"]:
                clock["next"] += job["check_every"]
                return check(base + seen)
            return False
        if side == "ours":
            train_epoch(model, splits.train, cfg, opt, sched, torch.Generator().manual_seed(epoch), device="cpu",
                        on_batch=on_batch)
        else:
            _baseline_epoch_with_checks(model, splits.train, opt, sched, cfg, on_batch, epoch)
        done += len(splits.train)
        if clock["hit"] is not None or clock["train"] > job["budget_s"]:
            break
    return {"hit": clock["hit"], "train": clock["train"], "curve": clock["curve"]}


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


def report_target(job: dict, runs: dict, quick: bool) -> None:
    ours, base = runs["ours"][0][job["name"]], runs["baseline"][0][job["name"]]
    if ours["hit"] is None or base["hit"] is None:
        print(f"  time_to_target: target {job['target']} not reached within the budget "
              f"(ours {ours['hit']}, baseline {base['hit']})", flush=True)
    base_t = base["hit"] if base["hit"] is not None else base["train"]  # a lower bound for the baseline
    ratio = base_t / ours["hit"] if ours["hit"] else float("nan")
    report(job["name"], ratio, {"target": job["target"], "unit": "seconds", "ours_seconds": ours["hit"],
                                "baseline_seconds": base["hit"], "baseline_budget_hit": base["hit"] is None,
                                "ours_curve": ours["curve"], "baseline_curve": base["curve"]}, quick)


# --------------------------------------------------------------------------- entry points
CHILD_JOBS = {"train": child_train, "eval": child_eval, "target": child_target}


def child_main(arg: str) -> int:
    spec = json.loads(arg)
    print(json.dumps([CHILD_JOBS[j["kind"]](spec["side"], j) for j in spec["jobs"]]))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced sizes, under two minutes")
    ap.add_argument("--only", nargs="*", help="run only these benchmarks (train, eval, gflops, target)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    progress_mod.QUIET = True
    torch.manual_seed(0)
    if args.child:
        return child_main(args.child)
    q = args.quick
    only = set(args.only or ["train", "eval", "gflops", "target"])
    print(f"machine: {json.dumps(machine())}", flush=True)
    reps = 1 if q else 3
    jobs = []
    if "train" in only:
        # the 32-px rows: ResNet-20 and the quick presets' CIFAR network (airbench-half), on CIFAR-shaped data
        for data_name, arch, eps, n_pgd, n_fgsm in (
                ("fmnist", "mnist-cnn", EPS_GREY, 512 if q else 6000, 1024 if q else 12000),
                ("resnet20", "resnet20", EPS_COLOUR, 128 if q else 1500, 384 if q else 4000),
                ("airbench-half", "airbench-half", EPS_COLOUR, 128 if q else 1500, 384 if q else 4000)):
            for method, n in (("pgd", n_pgd), ("fgsm-rs", n_fgsm)):
                base = {"kind": "train", "data": data_name, "arch": arch, "method": method, "eps": eps, "n": n}
                jobs.append({**base, "name": f"train_epoch_{data_name}_{method}", "bn": "eval"})
                if arch != "mnist-cnn" and not q:  # BatchNorm: also the train-mode crafting of Madry / Wong
                    jobs.append({**base, "name": f"train_epoch_{data_name}_{method}_bntrain", "bn": "train"})
    if "gflops" in only:
        for arch, data_name, name in PEAK_NETS:
            bench_gflops(dataset(data_name).train if data_name == "fmnist" else dataset(data_name), reps, q, arch,
                         name)
    with tempfile.TemporaryDirectory() as tmp:
        if "eval" in only:
            jobs += [{"kind": "eval", "name": f"eval_pgd20_{kind}", "weights": path, "n": 200 if q else 5000}
                     for kind, path in train_eval_models(Path(tmp), q).items()]
        if "target" in only:
            jobs.append({"kind": "target", "name": "time_to_target", "once": True, "target": 0.2 if q else 0.65,
                         "check_every": 512 if q else 6400, "val_n": 100 if q else 2000, "budget_s": 8 if q else 3600})
        def report_all(runs):  # every row from the rounds so far, rewritten as each round ends
            for job in jobs:
                {"train": report_train, "eval": report_eval, "target": report_target}[job["kind"]](job, runs, q)

        runs = alternate({"ours": {"side": "ours"}, "baseline": {"side": "baseline"}}, jobs, reps, report_all)
        if not q and "train" in only:
            info = [j for j in jobs if j["name"] in ("train_epoch_fmnist_pgd", "train_epoch_resnet20_pgd")]
            runs |= alternate({"baseline_heap": {"side": "baseline", "heap": True}}, info, reps)
            report_all(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
