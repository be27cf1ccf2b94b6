"""One run, start to finish: train (resuming from its checkpoint), evaluate per class on the
test set, and record both in the study database when there is one."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..attacks import AttackSpec
from ..config.run import RunConfig
from ..data import Splits, load_dataset, stratified_subset
from ..device import resolve_device
from ..distributed import init_from_env, is_main
from ..evaluation import EvalResult, evaluate
from ..io import atomic_write_json, remove_stale_temps
from ..training import train
from ..training.resolve import resolve
from .outdir import check_trainable


@dataclass
class RunOutcome:
    config: RunConfig
    history: list[dict]
    evaluation: EvalResult
    attack: AttackSpec
    train_seconds: float
    eval_seconds: float


def final_corruption_specs(cfg: RunConfig, data_dir=None, *, full_test: bool = True, run_dir=None) -> list:
    """The run's corruptions at its severities, from the published files when they are found and
    the whole test set is evaluated; a corruption that cannot run here (frost without its
    photographs) is left out and its reason written to corruptions.json."""
    if not cfg.corruptions:
        return []
    from ..corruptions import corruption_specs, unavailable
    from ..data.corrupted import find_corrupted

    skipped = {n: r for n in cfg.corruptions if (r := unavailable(n, cfg.frost_dir))}
    files = find_corrupted(cfg.dataset, data_dir) if full_test else None
    specs = corruption_specs([n for n in cfg.corruptions if n not in skipped], cfg.severities,
                             frost_dir=cfg.frost_dir, files=files)
    if run_dir is not None and is_main():
        atomic_write_json(Path(run_dir) / "corruptions.json", {
            "skipped": skipped, "files": str(files) if files else None,
            "sources": {s.label: s.source for s in specs}})
    return specs


def execute_run(cfg: RunConfig, run_dir, *, device: str = "auto", data_dir=None, splits: Splits | None = None,
                resume: bool = True, store=None, run_id: str | None = None, tag: str = "",
                download: bool = False) -> RunOutcome:
    run_dir = Path(run_dir)
    dev = init_from_env(resolve_device(device))
    if splits is None:
        splits = load_dataset(cfg.dataset, data_dir, val_size=cfg.val_size, seed=cfg.seed, download=download,
                              imbalance=cfg.imbalance)
    cfg = resolve(cfg, splits)
    check_trainable(cfg, splits)  # before train() creates run_dir
    if getattr(cfg, "threads", None):
        torch.set_num_threads(cfg.threads)  # the float reductions, hence the results, depend on it
    if is_main():
        remove_stale_temps(run_dir)  # of writes a kill interrupted; this run is the folder's only writer
    on_epoch = None
    if store is not None:
        def on_epoch(rec):
            store.record_epoch(run_id, rec, splits.classes, rec["val_n_per_class"])
    t0 = time.perf_counter()
    trained = train(cfg, splits, run_dir, device=dev, resume=resume, tag=tag, on_epoch=on_epoch)
    t_train = time.perf_counter() - t0
    test = stratified_subset(splits.test, cfg.test_limit, seed=cfg.seed) if cfg.test_limit else splits.test
    spec = AttackSpec(name="pgd", eps=cfg.eps, steps=cfg.test_steps, norm=cfg.norm, restarts=cfg.test_restarts)
    t0 = time.perf_counter()
    autoattack = cfg.test_autoattack_spec()  # per class next to PGD when the run asks for it
    corrupted = final_corruption_specs(cfg, data_dir, full_test=not cfg.test_limit, run_dir=run_dir)
    res = evaluate(trained.model, test, [spec] + ([autoattack] if autoattack else []) + corrupted, device=dev,
                   seed=cfg.seed)
    t_eval = time.perf_counter() - t0
    if is_main():
        atomic_write_json(run_dir / "eval.json", res.to_dict())
        if store is not None:
            store.finish(run_id, res)
    return RunOutcome(cfg, trained.history, res, spec, t_train, t_eval)
