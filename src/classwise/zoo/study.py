"""The whole zoo study in one call: choose the models, evaluate the unfinished ones (resumable,
locally or on Slurm), and write the per-class leaderboard, the check against the published
numbers and the agreement across models. `classwise zoo` is this function."""

from __future__ import annotations

from pathlib import Path

from .names import DEFAULT_MODEL_DIR
from .protocol import ZooSettings
from .report import ZooReport, build_report, write_report
from .run import ZooJob
from .sweep import default_study_dir, execute, register, select


def run_zoo(models="all", settings: ZooSettings | None = None, out=None, *, model_dir=DEFAULT_MODEL_DIR,
            data_dir=None, leaderboard=None, fetch: bool = True, download: bool = True,
            architecture: str | None = None, executor: str = "local", jobs: int = 1, device: str = "auto",
            slurm=None, frost_dir=None, batch_size: int = 256, figures: bool = True, evaluate: bool = True,
            quiet: bool = False) -> ZooReport:
    """Evaluate RobustBench zoo models per class and report them. `models` is `all` or names
    (a list, or one string separated by commas); `settings` the protocol (default: the
    leaderboard's for CIFAR-10 L-inf); `out` the study folder (default runs/zoo-<dataset>-<threat>),
    which holds study.db, runs/<id>/eval.json and the report. `evaluate=False` only reports what
    the store already holds."""
    settings = settings or ZooSettings()
    study_dir = Path(out) if out is not None else default_study_dir(settings)
    sel = select(models, settings, study_dir, leaderboard=leaderboard, fetch=fetch, architecture=architecture)
    store = register(sel, settings, study_dir)
    executed = None
    if evaluate:
        job = ZooJob(model_dir, data_dir, download=download, frost_dir=frost_dir, batch_size=batch_size, quiet=quiet)
        executed = execute(sel, study_dir, store, job, executor=executor, jobs=jobs, device=device, slurm=slurm)
    rep = build_report(study_dir, sel, settings, store, executed)
    write_report(rep, study_dir, figures=figures)
    return rep
