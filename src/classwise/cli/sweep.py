"""`classwise sweep`: every run of a study grid, locally or on Slurm."""

from __future__ import annotations

from pathlib import Path

from .common import positive_int

ORDER = 40


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run every run of a study grid (TOML), skipping finished ones")
    p.add_argument("config", type=Path, help="study config, e.g. configs/datasets-quick.toml")
    p.add_argument("--out", type=Path, help="study folder (default runs/<name>); holds study.db")
    p.add_argument("--executor", choices=["local", "slurm"], default="local")
    p.add_argument("--jobs", type=positive_int, default=1, help="local: runs in parallel processes")
    p.add_argument("--device", default="auto")
    p.add_argument("--partition", help="slurm partition")
    p.add_argument("--time", type=positive_int, default=60, help="slurm time limit per run, minutes")
    p.add_argument("--gpus", type=int, default=0, help="slurm GPUs per run")
    p.add_argument("--cpus", type=int, help="slurm CPUs per run")
    p.add_argument("--mem-gb", type=float, help="slurm memory per run")
    p.add_argument("--max-parallel", type=positive_int, default=8, help="slurm: runs of the job array at once")
    p.add_argument("--force", action="store_true", help="run even with method settings that make a method a no-op "
                   "within its run (they are warnings then)")
    p.add_argument("--wait", action="store_true", help="if another sweep is working in the study folder, wait for it")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)



def run(args) -> int:
    from ..study.sweep import SlurmOptions, sweep

    slurm = SlurmOptions(partition=args.partition, time_min=args.time, gpus=args.gpus, cpus=args.cpus,
                         max_parallel=args.max_parallel, mem_gb=args.mem_gb)
    failures = sweep(args.config, args.out, executor=args.executor, jobs=args.jobs, device=args.device, slurm=slurm,
                     force=args.force, wait=args.wait)
    return 1 if failures else 0
