"""How long a training run, a study, a sweep or a feature construction will take, said before
it starts (issue 28): a few real steps of each arm's training objective and a few steps of its
evaluation attacks are timed on this machine and device, then scaled to the planned counts, with
the `Estimate` of `estimate.py` (which times `classwise evaluate` the same way).

What is timed, per arm: one warm-up and two training steps at the run's batch size (its own
objective: an adversarial method crafts its examples as in training); the clean pass and one
step of the per-epoch validation attack and of the final test attack, each on a small probe of
images (attacked whatever the model predicts). What is assumed: the share of an attack's steps
that run, since evaluation attacks only the images the model gets right and drops each one as
soon as it is fooled (ALIVE: most of them under a robust model, few under a standard one). A
best worst-class checkpoint that is not the last one adds a test evaluation not counted here."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from .estimate import Estimate
from .progress import minutes
from .rounding import plural

# the share of an evaluation attack's image-steps that run (measured on the quick presets,
# see docs/guide/presets.md): a robust model keeps most images to the last step, a standard
# model loses nearly all of them in the first few
ALIVE = {"adversarial": 0.5, "standard": 0.1}
LONG = 30 * 60  # seconds: past this, on a CPU, the faster options are named before the start
PROBE_IMAGES = 64  # images each evaluation part is timed on, at most
TIMED_STEPS = 3  # training steps timed after one warm-up step, the median kept


@dataclass
class ArmEstimate:
    """Seconds of one run (one arm at one seed): training, per-epoch validation, test evaluation."""

    label: str
    train: float
    validation: float
    test: float
    train_images_per_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.train + self.validation + self.test


def _probe(data, k: int):
    n = len(data)
    k = max(2, min(k, n))
    return data.subset(np.unique(np.linspace(0, n - 1, k).round().astype(np.int64)))


class _Stepper:
    """Training steps of `cfg`'s objective at its batch size on `device`, on a few batches of
    `train_data`: `step()` runs one and returns its seconds per image."""

    def __init__(self, cfg, train_data, device):
        from .data import batches
        from .training.objectives.base import crafter
        from .training.optim import make_optimizer, make_scheduler
        from .training.trainer import build_model, objective_for

        self.model = build_model(cfg, train_data).to(device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.objective = objective_for(cfg, train_data)
        self.optimizer = make_optimizer(self.model.parameters(), cfg)
        self.scheduler = make_scheduler(self.optimizer, cfg, 100)
        generator = torch.Generator().manual_seed(cfg.seed)
        self.craft = crafter(self.model, cfg, generator)
        self.precision, self.device = getattr(cfg, "precision", "fp32"), device
        bs = min(cfg.batch_size, len(train_data))
        sub = _probe(train_data, bs * 2)
        self.batches = list(batches(sub, bs, shuffle=True, generator=generator, crop_padding=cfg.crop_padding,
                                    hflip=cfg.hflip, device=device, channels_last=cfg.channels_last))
        self.i = 0

    def step(self) -> float:
        from .heap import heap_kept
        from .training.objectives.base import Step

        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        self.model.train()
        cast = nullcontext()
        if self.precision != "fp32":  # the trainer's autocast (classwise/precision.py)
            from .precision import autocast

            cast = autocast(self.precision, self.device)
        with heap_kept():
            t0 = time.perf_counter()
            with cast:
                loss, _ = self.objective.loss(Step(self.model, x, y, self.craft, 1))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            float(loss.detach())  # wait for the device
            return (time.perf_counter() - t0) / len(y)


def _time_training(cfg, train_data, device) -> float:
    """Seconds per training image of `cfg`'s objective at its batch size on `device`."""
    return _time_interleaved([(cfg, train_data)], device)[0]


def _time_interleaved(runs, device) -> list[float]:
    """Seconds per training image of each (cfg, train data): one warm-up step each, then
    TIMED_STEPS rounds of one step of every run in turn (a burst of load elsewhere on the machine
    hits them alike), the median per run."""
    steppers = [_Stepper(cfg, data, device) for cfg, data in runs]
    for st in steppers:
        st.step()  # warm-up: the first step builds the kernels
    times = [[] for _ in steppers]
    for _ in range(TIMED_STEPS):
        for st, t in zip(steppers, times, strict=True):
            t.append(st.step())
    return [float(np.median(t)) for t in times]


def _time_attack_step(model, data, cfg, device) -> tuple[float, float]:
    """(seconds per image of a clean pass, seconds per image and attack step) on a probe."""
    from .attacks import AttackSpec
    from .evaluation import evaluate

    probe = _probe(data, PROBE_IMAGES)
    kw = {"device": device, "seed": cfg.seed, "show_progress": False, "class_sums": False}
    evaluate(model, probe, [], **kw)  # warm-up
    t0 = time.perf_counter()
    evaluate(model, probe, [], **kw)
    clean = (time.perf_counter() - t0) / len(probe)  # with what a call costs once: an upper bound
    def attacked(steps: int) -> float:
        spec = AttackSpec(name="pgd", eps=cfg.eps, steps=steps, norm=cfg.norm, images="all")
        t0 = time.perf_counter()
        evaluate(model, probe, [spec], early_stop=False, **kw)
        return time.perf_counter() - t0

    # the difference of 3 steps and 1 leaves out what a call costs once (the clean pass, the
    # BatchNorm folding, the final confirming pass)
    step = max(attacked(3) - attacked(1), 0.0) / 2 / len(probe)
    return clean, step


def _train_data(cfg, splits):
    from .data import stratified_subset

    if cfg.train_limit and cfg.train_limit < len(splits.train):
        return stratified_subset(splits.train, cfg.train_limit, seed=cfg.seed)
    return splits.train


def estimate_arm(cfg, splits, device, *, label: str | None = None, per_image: float | None = None) -> ArmEstimate:
    """Time `cfg` (a resolved `RunConfig`, or a `TrainConfig` without a test evaluation) on
    `splits` and scale to its epochs, validation checks and test evaluation (`per_image`: its
    training step's seconds per image, when already timed)."""
    from .training.objectives.base import objective_class
    from .training.trainer import build_model

    device = torch.device(device)
    train_data = _train_data(cfg, splits)
    if per_image is None:
        per_image = _time_training(cfg, train_data, device)
    n_train = len(train_data)
    train = per_image * n_train * cfg.epochs
    model = build_model(cfg, train_data).to(device)
    model.eval()
    clean, step = _time_attack_step(model, splits.val if splits.val is not None else splits.test, cfg, device)
    alive = ALIVE["adversarial" if objective_class(cfg.method).adversarial else "standard"]
    n_val = min(cfg.eval_subset, len(splits.val)) if splits.val is not None else 0
    validation = cfg.epochs * n_val * (clean + alive * step * cfg.eval_steps)
    test = 0.0
    if getattr(cfg, "test_steps", None):
        n_test = min(cfg.test_limit or len(splits.test), len(splits.test))
        test = n_test * (clean + alive * step * cfg.test_steps * getattr(cfg, "test_restarts", 1))
    notes = []
    if getattr(cfg, "test_autoattack", False) or getattr(cfg, "corruptions", None):
        notes.append("AutoAttack and corruptions not counted")
    return ArmEstimate(label or cfg.method, train, validation, test, 1 / per_image if per_image else 0.0, notes)


def estimate_study(cfg, splits, device, left: dict | None = None) -> tuple[list[ArmEstimate], float]:
    """Every arm of a `StudyConfig` (its run resolved) timed once and counted once per seed:
    (the arms' estimates, the study's total seconds). `left`, on a resume: {(arm, seed): share
    of its epochs still to train} of the runs not finished; only their arms are timed and counted."""
    from .training.resolve import resolve

    device = torch.device(device)
    names = [a for a in cfg.arms if left is None or any(arm == a for arm, _ in left)]
    # each arm's config validated and resolved as its run's is (its method's attack step and BatchNorm mode)
    runs = [resolve(type(cfg.run)(**{**cfg.run.model_dump(), "method": arm, "init_weights": None,
                                     "method_params": cfg.method_params.get(arm, {})}), splits) for arm in names]
    steps = _time_interleaved([(rc, _train_data(rc, splits)) for rc in runs], device)
    arms = [estimate_arm(rc, splits, device, label=arm, per_image=t)
            for rc, arm, t in zip(runs, names, steps, strict=True)]
    return arms, sum(seconds for _, seconds in run_plan(cfg, arms, left))


def run_plan(cfg, arms: list[ArmEstimate], left: dict | None = None) -> list[tuple[str, float]]:
    """(arm, estimated seconds) of each run the study will make, in its order (seed by seed); a
    run stopped mid-way on a resume counts its epochs left and its whole test evaluation."""
    est = {a.label: a for a in arms}
    return [(arm, (a.train + a.validation) * (1.0 if left is None else left[arm, seed]) + a.test)
            for seed in cfg.seed_list for arm in cfg.arms
            if (a := est.get(arm)) is not None and (left is None or (arm, seed) in left)]


def as_estimate(arms: list[ArmEstimate], runs: int = 1, unit: str = "runs") -> Estimate:
    """The arms' estimate in `estimate.py`'s shape (parts per arm, for `estimate_line`)."""
    parts = {a.label: a.seconds * runs for a in arms}
    return Estimate(sum(parts.values()), len(arms) * runs, TIMED_STEPS, parts, unit=unit)


def arm_line(a: ArmEstimate, runs: int = 1) -> str:
    times = f" x {runs} seeds" if runs > 1 else ""
    return (f"  {a.label}: about {minutes(a.seconds)}{times} (training {minutes(a.train)} at "
            f"{a.train_images_per_s:.0f} images/s, validation {minutes(a.validation)}, test {minutes(a.test)})"
            + (f"; {', '.join(a.notes)}" if a.notes else ""))


def faster_options(total: float, device, *, verb: str = "study", arch: str | None = None,
                   dataset: str | None = None, preset: str | None = None) -> list[str]:
    """What makes a long CPU run shorter, named before it starts: empty for a run of 30 minutes or
    less, or on an accelerator."""
    if total <= LONG or torch.device(device).type != "cpu":
        return []
    opts = []
    if verb == "study" and preset not in ("quick", "smoke"):
        opts.append("--preset quick")
    opts.append("--train-limit N (a stratified subset) or fewer --epochs")
    if dataset in ("cifar10", "cifar100", "svhn", "cifar10-lt", "cifar100-lt") and arch != "airbench-half":
        opts.append("--arch airbench-half (the quick presets' net)")
    elif arch not in ("mnist-cnn", "lenet", "airbench-half"):
        opts.append("a smaller --arch (see `classwise models`)")
    opts.append("a GPU (--device cuda)")
    return [f"that is more than {minutes(LONG)} on this CPU; faster: " + "; ".join(opts)]


def study_lines(cfg, splits, device, keep: list | None = None, left: dict | None = None) -> list[str]:
    """The lines `classwise study` prints before it trains (`keep` gets the arms' estimates;
    `left`: as for `estimate_study`)."""
    t0 = time.perf_counter()
    arms, total = estimate_study(cfg, splits, device, left)
    if keep is not None:
        keep.extend(arms)
    seeds = len(cfg.seed_list)
    timed = f" on {device} (timed on this machine in {time.perf_counter() - t0:.0f} s):"
    if left is None:
        lines = [f"estimated time: about {minutes(total)} for {plural(len(arms), 'arm')}"
                 + (f" x {seeds} seeds" if seeds > 1 else "") + timed]
        lines += [arm_line(a, seeds) for a in arms]
    else:
        n = len(left)
        lines = [f"estimated time: about {minutes(total)} for the {plural(n, 'run')} left of "
                 f"{len(cfg.arms) * seeds}" + timed]
        lines += [arm_line(a, sum(arm == a.label for arm, _ in left)) for a in arms]
    return lines + faster_options(total, device, arch=cfg.run.arch, dataset=cfg.run.dataset, preset=cfg.preset)


def run_lines(cfg, splits, device, *, verb: str = "train") -> list[str]:
    """The lines `classwise train` prints before it trains."""
    a = estimate_arm(cfg, splits, device)
    return ([f"estimated time: about {minutes(a.seconds)} on {device}:", arm_line(a)]
            + faster_options(a.seconds, device, verb=verb, arch=cfg.arch, dataset=cfg.dataset))


def features_estimate(model, data, kind: str, params, *, batch_size: int, device, todo: int) -> Estimate:
    """`classwise features build`: two gradient steps of the construction timed on a few images,
    scaled to its steps and the `todo` images still to build."""
    from .analysis.features import match_representation, representation
    from .attacks.core import eval_mode, perturb
    from .data.loader import to_float

    device = torch.device(device)
    k = max(2, min(16, batch_size, len(data)))
    x = to_float(data.images_at(np.arange(k)), device)
    model = model.to(device)
    with eval_mode(model):
        def run(steps):
            t0 = time.perf_counter()
            if kind in ("robust", "non-robust"):
                with torch.no_grad():
                    target = representation(model, x)
                match_representation(model, x.flip(0), target, steps=steps, step_size=params.step_size)
            else:
                y = data.labels[:k].to(device)
                perturb(model, x, y, eps=params.eps, steps=steps, alpha=params.step_size, norm="l2",
                        random_start=False, target=(y + 1) % data.num_classes, early_stop=False, track=False)
            return time.perf_counter() - t0
        run(1)  # warm-up
        per_step = max(run(3) - run(1), 0.0) / 2 / k
    seconds = per_step * params.steps * todo
    return Estimate(seconds, todo, k, {f"{params.steps} steps": seconds})


def say(lines_of, *args, **kwargs) -> None:
    """Print what `lines_of(*args, **kwargs)` says on stderr (not under --quiet, and only on the
    main rank under torchrun); an estimate that cannot be made is one line, never a failed run."""
    from . import progress
    from .distributed import is_main, world

    if progress.QUIET or not is_main() or world()[1] > 1:
        return
    try:
        lines = lines_of(*args, **kwargs)
    except (RuntimeError, ValueError) as exc:  # e.g. a method whose first step needs the run's own state
        lines = [f"no time estimate: {' '.join(str(exc).split())[:200]}"]
    for line in lines:
        progress.console.print(line, highlight=False, markup=False)


def sweep_lines(runs: list, device, *, jobs: int = 1, data_dir=None) -> list[str]:
    """The lines a local `classwise sweep` prints before its first run: each run still to do timed
    (its data set loaded once), the total, and the wall time over `jobs` processes."""
    from .data import load_dataset
    from .device import resolve_device
    from .training.resolve import resolve

    device = resolve_device(device)
    t0 = time.perf_counter()
    splits_of, arms = {}, []
    for rc in runs:
        key = (rc.dataset, rc.val_size, rc.seed, rc.imbalance)
        if key not in splits_of:
            splits_of[key] = load_dataset(rc.dataset, data_dir, val_size=rc.val_size, seed=rc.seed,
                                          imbalance=rc.imbalance)
        splits = splits_of[key]
        arms.append(estimate_arm(resolve(rc, splits), splits, device,
                                 label=f"{rc.dataset} {rc.arch} {rc.method} seed {rc.seed}"))
    total = sum(a.seconds for a in arms)
    wall = total / max(1, min(jobs, len(arms)))
    lines = [f"estimated time: about {minutes(total)} for {len(arms)} runs"
             + (f", about {minutes(wall)} over {jobs} processes" if jobs > 1 else "")
             + f" on {device} (timed on this machine in {time.perf_counter() - t0:.0f} s):"]
    lines += [arm_line(a) for a in arms]
    first = runs[0] if runs else None
    return lines + faster_options(wall, device, verb="sweep", arch=first.arch if first else None,
                                  dataset=first.dataset if first else None)


def features_lines(model, data, kind: str, params, *, batch_size: int, device, out, chunk: int) -> list[str]:
    """The lines `classwise features build` prints before it builds: the images still to build
    (a resumed build skips its stored chunks) times the measured cost of a step."""
    import math

    from .data.constructed import chunk_path

    n = len(data)
    todo = sum(min(chunk, n - i * chunk) for i in range(math.ceil(n / chunk)) if not chunk_path(out, i).is_file())
    if not todo:
        return []
    t0 = time.perf_counter()
    est = features_estimate(model, data, kind, params, batch_size=batch_size, device=device, todo=todo)
    lines = [f"estimated time: about {minutes(est.seconds)} for {todo} images x {params.steps} steps on {device} "
             f"(timed on {est.probe} images in {time.perf_counter() - t0:.0f} s)"]
    if est.seconds > LONG and torch.device(device).type == "cpu":
        lines.append(f"that is more than {minutes(LONG)} on this CPU; faster: --limit N (a stratified subset), "
                     "fewer --steps, a GPU (--device cuda)")
    return lines


class StudyClock:
    """The study's estimate, printed before it trains, then a line as each arm starts with the
    time left: the estimate of the arms still to run, scaled by how the finished ones compared
    with theirs (issue 28: progress lines carry an ETA; each epoch's bar has its own)."""

    def __init__(self, plan: list[tuple[str, float]]):
        self.plan = plan  # (arm, estimated seconds) of each run to make, in the study's order
        self.done = 0
        self.t0 = self.t_arm = time.perf_counter()
        self.spent = self.expected = 0.0

    @classmethod
    def start(cls, cfg, splits, device, left: dict | None = None) -> StudyClock | None:
        """Print the study's estimate (`left`: the runs a resume has still to make, as for
        `estimate_study`); the clock, or None when none was made (--quiet, torchrun)."""
        arms: list[ArmEstimate] = []
        say(study_lines, cfg, splits, device, keep=arms, left=left)
        return cls(run_plan(cfg, arms, left)) if arms else None

    def arm_starts(self, arm: str) -> None:
        now = time.perf_counter()
        if self.done:  # the arm before has finished
            self.spent += now - self.t_arm
            self.expected += self.plan[self.done - 1][1]
        self.t_arm = now
        if self.done >= len(self.plan) or not self.done:
            self.done += 1
            return
        pace = self.spent / self.expected if self.expected else 1.0
        left = pace * sum(seconds for _, seconds in self.plan[self.done:])
        say(lambda: [f"{arm} (run {self.done + 1} of {len(self.plan)}) starts after {minutes(now - self.t0)}: "
                     f"about {minutes(left)} left (the runs so far took {pace:.2f}x their estimate)"])
        self.done += 1
