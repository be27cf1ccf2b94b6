"""`classwise sweep CONFIG`: every run of a grid, skipping finished ones and resuming
interrupted ones from their checkpoints, locally (`--jobs N` processes) or on Slurm."""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from ..config.run import RunConfig
from ..errors import ClasswiseError
from ..estimate_training import say, sweep_lines
from ..io import check_out_dir
from ..progress import console
from ..training.resolve import resolve
from .execute import execute_run
from .grid import GridConfig, load_grid, run_id
from .lock import FolderLock
from .outdir import claim_out
from .preflight import warn
from .store import Store

DB = "study.db"


def study_dir_for(grid: GridConfig, out: Path | None) -> Path:
    return Path(out) if out else Path("runs") / grid.name


def prepare(grid: GridConfig, study_dir: Path) -> tuple[Store, list[str]]:
    """Register the grid's runs (ids from their resolved configs) and list the unfinished ones.
    A run's thread count is recorded here, once, so that every attempt of it (any --jobs, any
    resume) computes the same floats."""
    import torch

    check_out_dir(study_dir)
    runs = {}
    for cfg in grid.runs():
        cfg = resolve(cfg)
        if cfg.threads is None:
            cfg = cfg.model_copy(update={"threads": torch.get_num_threads()})
        runs[run_id(cfg)] = cfg.model_dump()
    store = Store(study_dir / DB)
    store.register(runs)
    status = store.status()
    return store, [rid for rid in runs if status.get(rid) != "finished"]


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)  # the sweep is gone (SIGKILL runs no cleanup): stop writing, do not hang


def _worker_init(parent: int) -> None:
    """A local worker dies with its sweep, and leaves Ctrl-C to the sweep (which stops it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # Linux: the kernel kills the worker the moment its parent dies
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def run_job(study_dir: str, rid: str, device: str = "auto") -> str:
    """Run one registered run to the end (resuming from its checkpoint); safe to call again.
    The run's recorded thread count applies (see `prepare`)."""
    study_dir = Path(study_dir)
    store = Store(study_dir / DB)
    cfg = RunConfig(**store.config(rid))
    store.start(rid)
    try:
        execute_run(cfg, study_dir / "runs" / rid, device=device, resume=True, store=store, run_id=rid,
                    tag=f"{rid}: ")
    except BaseException as exc:
        store.fail(rid, "".join(traceback.format_exception_only(exc)).strip())
        raise
    return rid


@dataclass
class SlurmOptions:
    partition: str | None = None
    time_min: int = 60
    gpus: int = 0
    cpus: int | None = None
    max_parallel: int = 8
    mem_gb: float | None = None


class _SlurmJob:
    """A submitit job that is requeued on preemption or timeout and then resumes from its
    checkpoint (submitit calls `checkpoint` before the job is killed)."""

    def __call__(self, study_dir: str, rid: str, device: str) -> str:
        return run_job(study_dir, rid, device)

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def preflight_grid(grid: GridConfig, study_dir: Path, *, executor: str, device: str, force: bool) -> list[str]:
    """Every run of the grid checked before the store is touched (study/preflight.py): seeds,
    method parameters, the frost folders and AutoAttack they name, and, on the data, each run's
    subsets and objective (class names, no-op settings). The data are read here for a local
    sweep; for Slurm they may exist only on the cluster's nodes, so a data set that is not found
    here skips only the checks that need it."""
    from ..data import load_dataset
    from .preflight import check_device, check_frost_dir, check_method_params, check_seed, decide, preflight_run

    check_out_dir(study_dir)
    claim_out(study_dir, "sweep", continues=True)  # a sweep continues its own study folder, nothing else
    if executor == "local":
        check_device(device)
    problems, loaded = [], {}
    runs = grid.runs()
    for i, cfg in enumerate(runs):
        where = f"run {i + 1} of {len(runs)}: " if len(runs) > 1 else ""
        try:
            check_seed(cfg.seed, "seed")
            check_method_params(cfg.method, cfg.method_params)
            key = (cfg.dataset, cfg.val_size, cfg.imbalance)  # the checks do not depend on the split's seed
            if key not in loaded:
                try:
                    loaded[key] = load_dataset(cfg.dataset, val_size=cfg.val_size, seed=cfg.seed,
                                               imbalance=cfg.imbalance)
                except ClasswiseError:
                    if executor == "local":
                        raise
                    loaded[key] = None
            splits = loaded[key]
            if splits is None:
                check_frost_dir(cfg.frost_dir)
                continue
            problems += [p for p in preflight_run(resolve(cfg, splits), splits, what=where) if p not in problems]
        except ClasswiseError as exc:
            raise ClasswiseError(f"{where}{exc}") from exc
    return decide(problems, force)


def sweep(config, out=None, *, executor: str = "local", jobs: int = 1, device: str = "auto",
          slurm: SlurmOptions | None = None, force: bool = False, wait: bool = False) -> dict[str, str]:
    """Every run of the grid in `config` into one study folder (default runs/<name>). The grid is
    checked whole first (`preflight_grid`); one sweep at a time works in a folder (`wait`: wait
    for the other; its runs, local processes or Slurm tasks, share the store)."""
    grid = load_grid(config)
    study_dir = study_dir_for(grid, out)
    lock = FolderLock(study_dir, what="sweep", wait=wait)
    lock.check()
    warnings = preflight_grid(grid, study_dir, executor=executor, device=device, force=force)
    with lock:
        warn(warnings)
        return _sweep(grid, study_dir, executor=executor, jobs=jobs, device=device, slurm=slurm)


def _sweep(grid: GridConfig, study_dir: Path, *, executor: str, jobs: int, device: str,
           slurm: SlurmOptions | None) -> dict[str, str]:
    store, todo = prepare(grid, study_dir)
    total = len(store.status())
    console.print(f"study '{grid.name}': {total} runs, {total - len(todo)} finished, {len(todo)} to run "
                  f"({study_dir / DB})")
    failures: dict[str, str] = {}
    if todo and executor == "local":
        say(sweep_lines, [RunConfig(**store.config(rid)) for rid in todo], device, jobs=jobs)
        if jobs <= 1:
            for rid in todo:
                try:
                    run_job(str(study_dir), rid, device)
                except Exception as exc:  # noqa: BLE001 - recorded; the sweep goes on with the others
                    failures[rid] = _reason(exc)
        else:
            failures = _sweep_pool(study_dir, todo, device, jobs)
    elif todo and executor == "slurm":
        failures = _sweep_slurm(study_dir, todo, device, slurm or SlurmOptions())
    elif todo:
        raise ClasswiseError(f"unknown executor '{executor}'; use local or slurm")
    status = store.status()
    done = sum(s == "finished" for s in status.values())
    console.print(f"study '{grid.name}': {done}/{len(status)} runs finished"
                  + (f", {len(failures)} failed: " + "; ".join(f"{rid} ({why})" for rid, why in failures.items())
                     if failures else ""))
    return failures


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _sweep_pool(study_dir: Path, todo: list[str], device: str, jobs: int, task=run_job) -> dict[str, str]:
    """`jobs` worker processes. Ctrl-C (or any error here) cancels the queued runs and stops the
    running ones (they resume from their checkpoints next time); a killed sweep takes its
    workers with it (`_worker_init`). `task(study_dir, run_id, device)` runs one run (default:
    train and evaluate; the zoo passes its own, picklable)."""
    failures = {}
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_worker_init,
                               initargs=(os.getpid(),))
    try:
        futures = {pool.submit(task, str(study_dir), rid, device): rid for rid in todo}
        for fut in as_completed(futures):
            try:
                fut.result()
            except Exception as exc:  # noqa: BLE001 - recorded; the sweep goes on with the others
                failures[futures[fut]] = _reason(exc)
    except BaseException:
        workers = list((pool._processes or {}).values())  # noqa: SLF001 - the pool has no public kill
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.join(5)
        raise
    pool.shutdown(wait=True)
    return failures


def _sweep_slurm(study_dir: Path, todo: list[str], device: str, opts: SlurmOptions, task=None) -> dict[str, str]:
    """One array task a run; `task` as in `_sweep_pool`, with a `checkpoint` method for requeueing
    (default `_SlurmJob`)."""
    try:
        import submitit
    except ImportError as exc:
        raise ClasswiseError("--executor slurm needs submitit: pip install 'classwise[slurm]'") from exc
    ex = submitit.AutoExecutor(folder=study_dir / "slurm" / "%j", cluster="slurm")
    params = {"timeout_min": opts.time_min, "slurm_array_parallelism": opts.max_parallel,
              "name": f"classwise-{study_dir.name}", "slurm_signal_delay_s": 60}
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if opts.gpus:
        params["gpus_per_node"] = opts.gpus
    if opts.cpus:
        params["cpus_per_task"] = opts.cpus
    if opts.mem_gb:
        params["mem_gb"] = opts.mem_gb
    ex.update_parameters(**params)
    jobs = ex.map_array(task or _SlurmJob(), [str(study_dir)] * len(todo), todo, [device] * len(todo))
    console.print(f"submitted {len(jobs)} Slurm jobs (array {jobs[0].job_id.split('_')[0]})")
    failures = {}
    for rid, job in zip(todo, jobs, strict=True):
        try:
            job.result()
        except Exception as exc:  # noqa: BLE001 - reported per run
            failures[rid] = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return failures
