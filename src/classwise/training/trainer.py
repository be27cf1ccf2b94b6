"""The training loop: one epoch at a time, each ending with a per-class check on a fixed
validation subset and an atomic checkpoint, so a killed run resumes losing at most an epoch."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..attacks import AttackSpec
from ..config import TrainConfig
from ..config.methods import method_settings
from ..data import ClassData, Splits, batches, stratified_subset
from ..distributed import barrier, is_main, world
from ..errors import ClasswiseError
from ..evaluation import evaluate
from ..heap import heap_kept
from ..io import atomic_torch_save, atomic_write_text
from ..models import create_model, load_weights, read_weights_file
from ..precision import autocast, compiled, grad_scaler, original
from ..progress import console, progress
from ..settings import config_differences
from .objectives import Objective, Step, make_objective
from .objectives.base import crafter
from .optim import make_optimizer, make_scheduler

CHECKPOINT = "checkpoint.pt"
FINAL = "model.pt"
BEST_WORST = "best_worst.pt"  # the epoch with the best worst-class validation accuracy
METRICS = "metrics.jsonl"


def model_head(cfg: TrainConfig) -> dict | None:
    """The output layer the run's method trains, if not the architecture's (LDAM's cosine one)."""
    return method_settings(cfg.method, cfg.method_params).head()


def build_model(cfg: TrainConfig, data: ClassData) -> nn.Module:
    c, h, w = data.shape
    mean, std = data.channel_stats()
    return create_model(cfg.arch, data.num_classes, c, h, mean=mean, std=std, head=model_head(cfg))


def model_meta(cfg: TrainConfig, data: ClassData) -> dict:
    c, h, _ = data.shape
    return {"arch": cfg.arch, "num_classes": data.num_classes, "in_channels": c, "input_size": h,
            "head": model_head(cfg), "classes": list(data.classes), "dataset": cfg.dataset,
            "config": cfg.model_dump()}


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]
    out_dir: Path


def _epoch_record(epoch, res, train_loss, train_acc, lr, seconds, robust_key) -> dict:
    clean = res.per_class("clean")
    rec = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "lr": lr, "seconds": seconds,
           "val_clean": res.accuracy("clean"), "val_clean_per_class": clean["accuracy"].tolist(),
           "val_n_per_class": clean["n"].tolist()}
    if robust_key:
        rec["robust_attack"] = robust_key
        rec["val_robust"] = res.accuracy(robust_key)
        rec["val_robust_per_class"] = res.per_class(robust_key)["accuracy"].tolist()
    return rec


def objective_for(cfg: TrainConfig, data: ClassData) -> Objective:
    counts = torch.bincount(data.labels, minlength=data.num_classes)
    return make_objective(cfg, list(data.classes), counts)


def train_epoch(model: nn.Module, data: ClassData, cfg: TrainConfig, optimizer, scheduler,
                generator: torch.Generator, *, device, desc: str | None = None, objective: Objective | None = None,
                epoch: int = 1, on_batch: Callable[[int], bool] | None = None, scaler=None,
                attacked: nn.Module | None = None) -> tuple[float, float]:
    """One pass over `data` with the run's objective; returns mean loss and accuracy on the
    inputs trained on. `on_batch(images_seen)` may return True to stop early (benchmarks use it).

    `model` is what the step runs (plain, DDP-wrapped or compiled); `attacked` the module the
    training attacks run on (default: `model` without its DDP wrapper). The step's forward passes,
    the attacks' included, run at `cfg.precision` (autocast); fp16 scales the loss with `scaler`
    (`precision.grad_scaler`; one is made for the epoch if none is given)."""
    objective = objective or objective_for(cfg, data)
    model.train()
    # under DDP each rank crafts its own shard's examples with the bare module: an attack's
    # input-gradient passes must not take part in DDP's gradient reduction
    if attacked is None:
        attacked = model.module if isinstance(model, DistributedDataParallel) else model
    own = original(attacked)  # the weights by their own names, for the objective's bookkeeping
    if scaler is None:
        scaler = grad_scaler(cfg.precision, device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    rank, size = world()
    stream = batches(data, cfg.batch_size, shuffle=True, generator=generator, crop_padding=cfg.crop_padding,
                     hflip=cfg.hflip, device=device, channels_last=cfg.channels_last, shard=(rank, size))
    craft = crafter(attacked, cfg, generator)
    with heap_kept():
        for x, y in progress(stream, desc, total_items=len(data) // size, step_items=cfg.batch_size):
            with autocast(cfg.precision, device):  # fp32: no context, the same operations as ever
                loss, logits = objective.loss(Step(model, x, y, craft, epoch))
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:  # fp16: the loss scaled so that small gradients do not underflow; a step with inf skipped
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            scheduler.step()
            with autocast(cfg.precision, device):
                objective.after_step(own)
            # accumulate on the device: no host sync inside the step
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            if on_batch is not None and on_batch(seen):
                break
    mean_loss = float(loss_sum) / max(seen, 1)
    if not math.isfinite(mean_loss):
        # checked once an epoch (no host sync inside a step); the last checkpoint is untouched
        raise ClasswiseError(f"training loss became {mean_loss} in epoch {epoch} (lr {cfg.lr} too high, or a "
                             "diverging objective); the checkpoint of the epoch before is kept: lower --lr and "
                             "rerun without --resume")
    return mean_loss, float(correct) / max(seen, 1)


def _named(data, default: str) -> str:
    return getattr(data, "name", "") or default


def training_sets(cfg: TrainConfig, splits: Splits) -> tuple[ClassData, ClassData]:
    """The images `train` trains on (`cfg.train_limit` of `splits.train`) and the validation
    subset it checks every epoch (`cfg.eval_subset` of `splits.val`); a ClasswiseError of one
    line when either has none, before anything is written."""
    if splits.train is None:
        raise ClasswiseError(f"the training set is empty: data set '{cfg.dataset}' has no training images "
                             "(an evaluation-only data set: use `classwise evaluate`)")
    if len(splits.train) == 0:
        raise ClasswiseError(f"the training set is empty: {_named(splits.train, cfg.dataset)} has 0 images; "
                             "give train() a Splits whose train holds images")
    train_data = splits.train
    if cfg.train_limit:  # at least 10 (the config's bound) of a set that has images: never empty
        train_data = stratified_subset(train_data, cfg.train_limit, seed=cfg.seed)
    if splits.val is None or len(splits.val) == 0:
        raise ClasswiseError(f"the validation set is empty: {_named(splits.val, cfg.dataset)} has 0 images, and "
                             "training checks every epoch on it; give train() a Splits with validation images "
                             "(a val_size above 0)")
    return train_data, stratified_subset(splits.val, cfg.eval_subset, seed=cfg.seed)


def train(cfg: TrainConfig, splits: Splits, out_dir, *, device="cpu", resume: bool = False,
          tag: str = "", model: nn.Module | None = None,
          on_epoch: Callable[[dict], None] | None = None) -> TrainResult:
    """Train `cfg.method` on `splits.train`; write checkpoints and metrics to `out_dir`.
    `on_epoch(record)` sees every epoch's record (again for epochs restored on resume); under
    torchrun every rank trains its shard and only rank 0 writes."""
    if cfg.eps is None or cfg.crop_padding is None or cfg.hflip is None or cfg.attack_bn is None:
        raise ClasswiseError("TrainConfig has unresolved defaults; call cfg.resolved(...) first")
    train_data, eval_data = training_sets(cfg, splits)  # refused before out_dir is made or written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)

    main = is_main()
    torch.manual_seed(cfg.seed)
    model = (model or build_model(cfg, train_data)).to(device)
    if cfg.init_weights:
        load_weights(model, cfg.init_weights)
    objective = objective_for(cfg, train_data)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters(), cfg)
    scaler = grad_scaler(cfg.precision, device)  # fp16 only; its scale is kept in the checkpoint
    steps_per_epoch = max(1, sum(1 for _ in range(0, len(train_data) // world()[1], cfg.batch_size)))
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    generator = torch.Generator().manual_seed(cfg.seed)
    robust_spec = AttackSpec(name="pgd", eps=cfg.eps, steps=cfg.eval_steps, norm=cfg.norm)
    # the per-epoch check, and the attacks the objective's own statistics need, in one pass
    val_specs = [robust_spec, *(s for s in objective.validation_attacks() if s.label != robust_spec.label)]
    history: list[dict] = []
    best = None  # (robust accuracy, epoch, weights) for the collapse guard
    best_worst = None  # {"epoch", "worst"}: the epoch whose worst class did best on validation
    start_epoch = 1

    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.exists():
        state = read_weights_file(ckpt_path)
        if state["config"] != cfg.model_dump():
            diff = "; ".join(config_differences(state["config"], cfg.model_dump()))
            raise ClasswiseError(f"--resume: {ckpt_path} was written with other settings: {diff}; give the same "
                                 "settings to continue it, or use a fresh --out or drop --resume")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1
        objective.load_state_dict(state.get("objective", {}))
        best_worst = state.get("best_worst")
        if best is not None and best["weights"] is None:  # the best epoch was the checkpointed one
            best["weights"] = {k: v.clone() for k, v in state["model"].items()}
        if main:
            console.print(f"{tag}resuming from epoch {state['epoch']} ({ckpt_path})")
            for rec in history if on_epoch else ():
                on_epoch(rec)  # a crash may have come between the checkpoint and the record
    elif ckpt_path.exists() and not resume and main:
        ckpt_path.unlink()
    barrier()
    net = model
    if world()[1] > 1:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    attacked = model
    if cfg.compile:  # the step (through DDP where it runs) and the training attacks on the bare module
        attacked = compiled(model)
        net = attacked if net is model else compiled(net)

    if start_epoch == 1 and any(st.when == "start" for st in objective.statistics):
        # statistics taken at each epoch's start (FRL): the first epoch's come from the model before training
        objective.end_epoch(0, evaluate(model, eval_data, val_specs, batch_size=512, device=device, seed=cfg.seed,
                                        show_progress=False, precision=cfg.precision), robust_spec.label)
    adversarial = objective.adversarial
    stopped = bool(history and history[-1].get("stopped"))
    for epoch in range(start_epoch, cfg.epochs + 1):
        if stopped:
            break
        t0 = time.perf_counter()
        train_loss, train_acc = train_epoch(net, train_data, cfg, optimizer, scheduler, generator, device=device,
                                            desc=f"{tag}epoch {epoch}/{cfg.epochs}" if main else None,
                                            objective=objective, epoch=epoch, scaler=scaler, attacked=attacked)
        lr = optimizer.param_groups[0]["lr"]
        # the validation attacks search at the run's precision; their verdicts are fp32 (see evaluate)
        res = evaluate(model, eval_data, val_specs, batch_size=512, device=device,
                       seed=cfg.seed + epoch, show_progress=False, precision=cfg.precision)
        rec = _epoch_record(epoch, res, train_loss, train_acc, lr,
                            time.perf_counter() - t0, robust_spec.label)
        objective.end_epoch(epoch, res, robust_spec.label)
        if objective.state:
            rec["objective"] = objective.describe_state()
        worst = min(rec["val_robust_per_class" if adversarial else "val_clean_per_class"])
        improved = best_worst is None or worst > best_worst["worst"]
        if improved:
            best_worst = {"epoch": epoch, "worst": worst}
        if adversarial and cfg.collapse_drop is not None:
            if best is None or rec["val_robust"] > best["robust"]:
                best = {"robust": rec["val_robust"], "epoch": epoch,
                        "weights": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            elif rec["val_robust"] < best["robust"] - cfg.collapse_drop:
                model.load_state_dict(best["weights"])
                rec["stopped"] = (f"validation robust accuracy fell from {best['robust']:.3f} "
                                  f"(epoch {best['epoch']}) to {rec['val_robust']:.3f}: "
                                  f"catastrophic overfitting; kept epoch {best['epoch']}'s weights")
                stopped = True
        history.append(rec)
        if not main:
            continue
        if stopped:
            console.print(f"{tag}[yellow]{rec['stopped']}[/yellow]")
        msg = f"{tag}epoch {epoch}: loss {rec['train_loss']:.3f}, val clean {rec['val_clean']:.3f}"
        if "val_robust" in rec:
            msg += f", val {robust_spec.label} {rec['val_robust']:.3f}"
        console.print(msg + f" ({rec['seconds']:.0f}s)")
        if improved:
            atomic_torch_save(out_dir / BEST_WORST, {"state_dict": model.state_dict(), "epoch": epoch,
                                                     "val_worst": worst, **model_meta(cfg, train_data)})
        atomic_torch_save(ckpt_path, {
            "objective": objective.state_dict(), "best_worst": best_worst,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(), "epoch": epoch, "history": history,
            # the best weights are stored only when they are not this epoch's (halves the file)
            "best": best if best is None or best["epoch"] != epoch else {**best, "weights": None},
            "config": cfg.model_dump(),
            **({"scaler": scaler.state_dict()} if scaler is not None else {}),
        })
        write_metrics(out_dir / METRICS, history, tag=tag.strip(" :"), classes=train_data.classes)
        if on_epoch:
            on_epoch(rec)

    final = objective.final_weights(model)
    if final is not None:
        model.load_state_dict(final)
    if main:
        atomic_torch_save(out_dir / FINAL, {"state_dict": model.state_dict(), **model_meta(cfg, train_data)})
    barrier()
    return TrainResult(model, history, out_dir)


def write_metrics(path: Path, history: list[dict], tag: str = "", classes=None) -> None:
    lines = [json.dumps({"model": tag, "classes": classes, **rec}) for rec in history]
    atomic_write_text(path, "\n".join(lines) + "\n")
