"""One zoo model, one job: load it by name, evaluate it per class on the leaderboard's images
(clean and AutoAttack, or clean and the corruptions), and record the result. The per-sample
record (`runs/<id>/eval.json`) is written atomically, then the per-class rows and the run's
status in one transaction of the study database: a job killed at any point leaves the run
unfinished and nothing half-written, and the next sweep evaluates that model again."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import ClasswiseError
from .names import DEFAULT_MODEL_DIR

DB = "study.db"
EVAL = "eval.json"
META = "zoo_run.json"  # what the run used that is not its identity: weights files, corruption sources, timing


def test_images(dataset: str, n: int, data_dir=None):
    """The first `n` images of the official test set, in its order (RobustBench's selection),
    and whether that is the whole test set."""
    from ..data import load_raw

    test = load_raw(dataset, data_dir)[1]
    if n > len(test):
        raise ClasswiseError(f"--n {n} is more than the {len(test)} test images of {dataset} found")
    return (test.subset(list(range(n))), False) if n < len(test) else (test, True)


def specs_for(cfg: dict, *, whole: bool, data_dir=None, frost_dir=None) -> tuple[list, dict]:
    """The run's evaluations (AutoAttack, or the corruptions) and what was left out and why."""
    if cfg["threat"] != "corruptions":
        from ..attacks.autoattack import AutoAttackSpec

        return [AutoAttackSpec(**cfg["autoattack"])], {}
    from ..corruptions import corruption_specs, unavailable
    from ..data.corrupted import find_corrupted

    skipped = {c: r for c in cfg["corruptions"] if (r := unavailable(c, frost_dir))}
    files = find_corrupted(cfg["dataset"], data_dir) if whole else None  # the published files hold all of it
    specs = corruption_specs([c for c in cfg["corruptions"] if c not in skipped], cfg["severities"],
                             frost_dir=frost_dir, files=files)
    return specs, skipped


def evaluate_zoo_model(cfg: dict, *, model_dir=DEFAULT_MODEL_DIR, data_dir=None, device="auto",
                       download: bool = True, frost_dir=None, batch_size: int = 256, show_progress: bool = True):
    """(EvalResult, meta) of one registered zoo run's config."""
    import torch

    from ..device import resolve_device
    from ..evaluation import evaluate
    from .names import load_model, weight_files

    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])  # the float reductions, hence the results, depend on it
    name, dataset, threat = cfg["robustbench"], cfg["dataset"], cfg["threat"]
    model = load_model(name, dataset, threat, model_dir, download=download)  # first: a missing model fails fast
    data, whole = test_images(dataset, cfg["n"], data_dir)
    dev = resolve_device(device)
    model.to(dev)
    specs, skipped = specs_for(cfg, whole=whole, data_dir=data_dir, frost_dir=frost_dir)
    t0 = time.perf_counter()
    res = evaluate(model, data, specs, batch_size=batch_size, device=dev, seed=cfg.get("seed", 0),
                   show_progress=show_progress)
    meta = {"robustbench": name, "weights": [str(p) for p in weight_files(name, dataset, threat, model_dir)],
            "seconds": round(time.perf_counter() - t0, 2), "device": str(dev), "skipped": skipped,
            "sources": sorted({getattr(s, "source", "autoattack") for s in specs}), "notes": res.notes}
    return res, meta


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ClasswiseError):
        return str(exc)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_zoo_job(study_dir, rid: str, device: str = "auto", *, model_dir=DEFAULT_MODEL_DIR, data_dir=None,
                download: bool = True, frost_dir=None, batch_size: int = 256, quiet: bool = False) -> str:
    """Evaluate one registered zoo run to the end; safe to call again (it starts over)."""
    from ..io import atomic_write_json, remove_stale_temps
    from ..progress import console
    from ..study.store import Store

    study_dir = Path(study_dir)
    store = Store(study_dir / DB)
    cfg = store.config(rid)
    run_dir = study_dir / "runs" / rid
    store.start(rid)
    try:
        remove_stale_temps(run_dir)  # of writes a kill interrupted; this job is the folder's only writer
        res, meta = evaluate_zoo_model(cfg, model_dir=model_dir, data_dir=data_dir, device=device,
                                       download=download, frost_dir=frost_dir, batch_size=batch_size,
                                       show_progress=not quiet)
        atomic_write_json(run_dir / META, meta)
        atomic_write_json(run_dir / EVAL, res.to_dict())
        store.finish(rid, res)
    except BaseException as exc:
        store.fail(rid, _one_line(exc))
        raise
    if not quiet:
        keys = res.keys
        console.print(f"{cfg['robustbench']}: " + ", ".join(f"{k} {res.accuracy(k) * 100:.2f}%" for k in keys[:3])
                      + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
                      + f" on {len(res.labels)} images, {meta['seconds']:.0f} s", soft_wrap=True)
    return rid


class ZooJob:
    """The job a sweep hands to a worker process or a Slurm array task: one model. Requeued on
    preemption or timeout, it starts that model over (submitit calls `checkpoint` first)."""

    def __init__(self, model_dir=DEFAULT_MODEL_DIR, data_dir=None, download: bool = True, frost_dir=None,
                 batch_size: int = 256, quiet: bool = False):
        self.model_dir, self.data_dir, self.download = str(model_dir), data_dir, download
        self.frost_dir, self.batch_size, self.quiet = frost_dir, batch_size, quiet

    def __call__(self, study_dir: str, rid: str, device: str = "auto") -> str:
        from .. import progress

        quiet, progress.QUIET = progress.QUIET, progress.QUIET or self.quiet
        try:  # the local executor runs the job in this process: the caller's setting is given back
            return run_zoo_job(study_dir, rid, device, model_dir=self.model_dir, data_dir=self.data_dir,
                               download=self.download, frost_dir=self.frost_dir, batch_size=self.batch_size,
                               quiet=self.quiet)
        finally:
            progress.QUIET = quiet

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
