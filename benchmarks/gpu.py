"""GPU benchmark: what the mitigation-paper setting (PreAct ResNet-18, TRADES, CIFAR-10) costs on
a CUDA device, ready to run:

    python benchmarks/gpu.py                      # CUDA; CIFAR-10 from ./data (or --data-dir)
    python benchmarks/gpu.py --checkpoint runs/.../trades/model.pt   # evaluate a trained model
    python benchmarks/gpu.py --tiny               # a minute on the CPU: every step on toy sizes

It times (1) one training epoch (49,000 images, batch 128, TRADES's PGD-10 and three forward
passes) at fp32, at bf16 (autocast) and compiled (torch.compile, at fp32 and at bf16), each on a
fresh model after untimed warm-up steps (the compile time is reported apart); (2) the per-class
PGD-20 evaluation of the 10,000 test images at fp32 and bf16; (3) AutoAttack (standard version,
always fp32) on a stratified 1,000. Each timing comes with the images per second, the FLOPs the
phase's passes do (counted once by torch's FlopCounterMode) and the rate achieved against the
device's measured matmul peak. Results: benchmarks/results/gpu.json (gpu-tiny.json with --tiny).

The model evaluated is the fp32 epoch's (one epoch of TRADES: an early-stopped PGD drops its
images sooner than on a fully trained model) unless --checkpoint gives a trained one.
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
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import classwise.progress as progress_mod
from classwise.attacks import AttackSpec, AutoAttackSpec
from classwise.config import TrainConfig
from classwise.data import load_dataset, make_synthetic, split, stratified_subset, to_float
from classwise.evaluation import evaluate
from classwise.io import atomic_write_json
from classwise.models import load_weights
from classwise.models.registry import MODELS, register_model
from classwise.precision import compiled
from classwise.training import build_model, make_optimizer, make_scheduler, objective_for, train_epoch
from classwise.training.objectives import Step

RESULTS = Path(__file__).parent / "results"
PRESET = "mitigation-paper"
VARIANTS = [("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True)]  # (precision, compiled)


TINY_ARCH = "gpu-bench-tiny"


def _tiny_net(num_classes=10, in_channels=3, input_size=32):
    """--tiny's network: conv-BN-ReLU twice and a linear head, compiled in seconds."""
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(4), nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes))


def preset_run() -> dict:
    """The mitigation-paper preset's [run] table: the setting's architecture, budget and threat."""
    import tomllib

    from classwise.study.grid import PRESET_DIR

    return tomllib.loads((PRESET_DIR / f"{PRESET}.toml").read_text())["run"]


def config(tiny: bool) -> TrainConfig:
    run = preset_run()
    keep = ("arch", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "milestones", "gamma",
            "eps", "attack_steps", "epochs", "val_size")
    fields = {k: run[k] for k in keep if k in run}
    fields.update(dataset=run["dataset"], method="trades")
    if tiny:
        fields.update(arch=TINY_ARCH, batch_size=16)
    return TrainConfig(**fields).resolved(grey=False, hflip_ok=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
            "date": time.strftime("%Y-%m-%d %H:%M")}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(gpu=p.name, memory_gb=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), tf32_convs=torch.backends.cudnn.allow_tf32,
                    tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    else:
        info.update(cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    return info


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, reps: int = 10) -> float:
    """TFLOP/s of an n x n matmul in `dtype`, median of `reps`."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e12


def _counted(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def pass_flops(cfg: TrainConfig, data, device) -> dict:
    """FLOPs per image of the passes the phases make (FlopCounterMode's module tracking cannot
    follow `autograd.grad`, so each kind of pass is counted apart, with `backward`): an eval-mode
    forward, an attack pass (forward and input gradient), and TRADES's training passes (clean,
    adversarial, clean again, and the backward through all three)."""
    torch.manual_seed(0)
    model = build_model(cfg, data).to(device).to(memory_format=torch.channels_last)
    n = min(8, len(data))
    x = to_float(data.images[:n], device, channels_last=True)
    y = data.labels[:n].to(device)
    model.eval()
    with torch.no_grad():
        forward = _counted(lambda: model(x))
    model.requires_grad_(False)
    xg = x.clone().requires_grad_(True)
    attack_pass = _counted(lambda: model(xg).sum().backward())
    model.requires_grad_(True).train()
    objective = objective_for(cfg, data)
    train = _counted(lambda: objective.loss(Step(model, x, y, lambda *a, **k: x.clone(), 1))[0].backward())
    step = forward + cfg.attack_steps * attack_pass + train  # TRADES's reference pass, PGD-10, the step
    return {k: v / n for k, v in {"forward": forward, "attack_pass": attack_pass, "train_passes": train,
                                  "train_step": step}.items()}


def time_epoch(cfg: TrainConfig, data, device, precision: str, compile_: bool, warmup: int) -> dict:
    """A fresh model's training epoch at `precision` (compiled or eager): `warmup` untimed steps
    first (a compiled step's compilation among them), then the whole epoch."""
    cfg = cfg.model_copy(update={"precision": precision, "compile": compile_})
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data).to(device).to(memory_format=torch.channels_last)
    net = compiled(model) if compile_ else model
    opt = make_optimizer(model.parameters(), cfg)
    sched = make_scheduler(opt, cfg, max(1, len(data) // cfg.batch_size))
    objective = objective_for(cfg, data)
    sync(device)
    t = time.perf_counter()
    train_epoch(net, data, cfg, opt, sched, torch.Generator().manual_seed(1), device=device, objective=objective,
                attacked=net, on_batch=lambda seen: seen >= warmup * cfg.batch_size)
    sync(device)
    warm = time.perf_counter() - t
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    loss, acc = train_epoch(net, data, cfg, opt, sched, torch.Generator().manual_seed(2), device=device,
                            objective=objective, attacked=net)
    sync(device)
    seconds = time.perf_counter() - t
    out = {"precision": precision, "compiled": compile_, "seconds": seconds, "images": len(data),
           "images_per_s": len(data) / seconds, "warmup_steps": warmup, "warmup_seconds": warm,
           "train_loss": loss, "train_acc": acc}
    if device.type == "cuda":
        out["max_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out | {"model": model}


def time_eval(model, test, cfg, device, precision: str, batch_size: int) -> dict:
    spec = AttackSpec(eps=cfg.eps, steps=20)
    evaluate(model, test.subset(np.arange(min(len(test), batch_size))), [spec], batch_size=batch_size, device=device,
             show_progress=False, precision=precision)  # warm-up: kernels chosen, memory touched
    sync(device)
    t = time.perf_counter()
    res = evaluate(model, test, [spec], batch_size=batch_size, device=device, show_progress=False, precision=precision)
    sync(device)
    seconds = time.perf_counter() - t
    # the passes the attack made: every image it attacked takes up to 20, an early stop fewer; one
    # pass a step (forward and input gradient) plus the clean pass and the fp32 re-reads
    return {"precision": precision, "seconds": seconds, "images": len(test), "images_per_s": len(test) / seconds,
            "clean": res.accuracy("clean"), "pgd20": res.accuracy(spec.label),
            "pgd20_per_class": res.per_class(spec.label)["accuracy"].round(4).tolist()}


def time_autoattack(model, test, cfg, device, n: int, tiny: bool, batch_size: int) -> dict:
    try:
        import pyautoattack  # noqa: F401
    except ImportError:
        return {"skipped": "pyautoattack is not installed (pip install 'classwise[autoattack]')"}
    sub = stratified_subset(test, n, seed=0)
    spec = AutoAttackSpec(eps=cfg.eps) if not tiny else AutoAttackSpec(eps=cfg.eps, version="custom",
                                                                       attacks=("apgd-ce",), iterations=2)
    sync(device)
    t = time.perf_counter()
    res = evaluate(model, sub, [spec], batch_size=batch_size, device=device, show_progress=False)
    sync(device)
    seconds = time.perf_counter() - t
    return {"precision": "fp32", "version": spec.version, "label": spec.label, "seconds": seconds, "images": len(sub),
            "images_per_s": len(sub) / seconds, "clean": res.accuracy("clean"), "autoattack": res.accuracy(spec.label)}


def data_for(args, cfg):
    if args.tiny:
        train, test = make_synthetic(10, (3, 32, 32), n_train=74, n_test=40, seed=0, name="cifar-shaped")
        return split(train, test, 10, seed=0)
    return load_dataset(cfg.dataset, args.data_dir, val_size=cfg.val_size, seed=cfg.seed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (the test suite runs this)")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --tiny)")
    ap.add_argument("--data-dir", help="where CIFAR-10 is (else $CLASSWISE_DATA, ./data, ~/.cache/classwise)")
    ap.add_argument("--checkpoint", type=Path, help="evaluate these trained weights instead of the timed epoch's")
    ap.add_argument("--only", nargs="*", choices=["train", "eval", "autoattack"], help="run only these phases")
    ap.add_argument("--no-compile", action="store_true", help="leave out the compiled epochs")
    ap.add_argument("--eval-images", type=int, default=10_000)
    ap.add_argument("--aa-images", type=int, default=1_000)
    ap.add_argument("--out", type=Path, help="results file (default benchmarks/results/gpu.json, gpu-tiny.json)")
    args = ap.parse_args(argv)
    progress_mod.QUIET = True
    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here; --tiny runs the benchmark's steps on the CPU at toy sizes",
              file=sys.stderr)
        return 2
    if not args.tiny:
        return run(args, device)
    register_model(TINY_ARCH, "benchmarks/gpu.py --tiny's network")(_tiny_net)
    try:
        return run(args, device)
    finally:
        MODELS.pop(TINY_ARCH, None)  # the registry as it was: the test suite runs --tiny inside its session


def run(args, device: torch.device) -> int:
    only = set(args.only or ["train", "eval", "autoattack"])
    cfg = config(args.tiny)
    splits = data_for(args, cfg)
    train_data, test = splits.train, splits.test
    eval_n, aa_n = (20, 10) if args.tiny else (args.eval_images, args.aa_images)
    test = stratified_subset(test, eval_n, seed=0) if eval_n < len(test) else test
    eval_batch = 16 if args.tiny else 512
    out = {"setting": f"{PRESET}: {cfg.arch}, {cfg.method}, {cfg.dataset}, batch {cfg.batch_size}, eps "
                      f"{cfg.eps:.4g}, PGD-{cfg.attack_steps} of {cfg.attack_alpha:.4g}",
           "tiny": args.tiny, "machine": machine(device)}
    peak_n = 256 if args.tiny else 8192
    out["matmul_peak_tflops"] = peaks = {"fp32": matmul_peak(device, torch.float32, peak_n),
                                         "bf16": matmul_peak(device, torch.bfloat16, peak_n)}
    if device.type == "cuda":  # cuDNN's convolutions take TF32 for fp32 by default (torch.backends.cudnn.allow_tf32)
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        peaks["tf32"] = matmul_peak(device, torch.float32, peak_n)
        torch.backends.cuda.matmul.allow_tf32 = before
    fp32_peak = peaks.get("tf32") if torch.backends.cudnn.allow_tf32 and "tf32" in peaks else peaks["fp32"]
    out["flops_per_image"] = passes = pass_flops(cfg, train_data, device)
    flops, per_pass = passes["train_step"], passes["attack_pass"]
    model = None
    if "train" in only:
        out["train_epoch"] = []
        warmup = 2 if args.tiny else 5
        for precision, comp in VARIANTS:
            if comp and args.no_compile:
                continue
            got = time_epoch(cfg, train_data, device, precision, comp, warmup)
            trained = got.pop("model")
            model = trained if model is None else model  # the first (fp32, eager) epoch's model
            peak = peaks["bf16"] if precision == "bf16" else fp32_peak
            got["tflops"] = flops * got["images_per_s"] / 1e12
            got["fraction_of_matmul_peak"] = got["tflops"] / peak if peak else None
            out["train_epoch"].append(got)
            print(f"train epoch {precision}{' compiled' if comp else ''}: {got['seconds']:.1f} s, "
                  f"{got['images_per_s']:.0f} images/s, {got['tflops']:.2f} TFLOP/s "
                  f"(warm-up {got['warmup_seconds']:.1f} s)", flush=True)
    if model is None or args.checkpoint:
        torch.manual_seed(0)
        model = build_model(cfg, train_data).to(device)
        if args.checkpoint:
            load_weights(model, args.checkpoint)
            out["checkpoint"] = str(args.checkpoint)
    model.eval()
    if "eval" in only:
        out["pgd20_eval"] = []
        for precision in ("fp32", "bf16"):
            got = time_eval(model, test, cfg, device, precision, eval_batch)
            got["max_tflops"] = 21 * per_pass * got["images_per_s"] / 1e12  # if no image stopped early
            out["pgd20_eval"].append(got)
            print(f"per-class PGD-20 on {got['images']} images, {precision}: {got['seconds']:.1f} s, "
                  f"{got['images_per_s']:.0f} images/s (robust {got['pgd20'] * 100:.1f}%)", flush=True)
    if "autoattack" in only:
        out["autoattack"] = time_autoattack(model, splits.test, cfg, device, aa_n, args.tiny, eval_batch)
        aa = out["autoattack"]
        text = aa["skipped"] if "skipped" in aa else \
            f"{aa['seconds']:.1f} s on {aa['images']} images (robust {aa['autoattack'] * 100:.1f}%)"
        print(f"autoattack: {text}", flush=True)
    path = args.out or RESULTS / f"gpu{'-tiny' if args.tiny else ''}.json"
    atomic_write_json(path, json.loads(json.dumps(out, default=float)))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
