"""One arm of a study at one seed: its run config and folder, a finished run read back for a
`--resume` (nothing evaluated again), its best worst-class checkpoint evaluated like its last
weights, and the sanity checks of its test evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..attacks import AttackSpec
from ..config.run import RunConfig
from ..config.study import StudyConfig
from ..data import Splits, stratified_subset
from ..device import resolve_device
from ..errors import ClasswiseError
from ..evaluation import EvalResult, evaluate, load_eval, sanity_checks
from ..io import atomic_write_json
from ..models import load_weights, read_weights_file
from ..progress import console
from ..training import BEST_WORST, CHECKPOINT, FINAL, build_model
from ..training.resolve import resolve
from .execute import RunOutcome
from .outdir import CONFIG
from .store import Store

REEVALUATE = "; delete it and rerun with --resume to evaluate that run again"


@dataclass
class ArmRun:
    """One arm at one seed."""

    arm: str
    seed: int
    run_dir: Path
    outcome: RunOutcome
    best: EvalResult | None = None  # the best worst-class checkpoint's evaluation
    best_epoch: int | None = None
    best_differs: bool = False  # its weights are not the last ones


def arm_dir(out_dir: Path, arm: str, seed: int, several_seeds: bool) -> Path:
    return out_dir / arm / f"seed{seed}" if several_seeds else out_dir / arm


# what each arm's method decides when the study gives none: its released code's attack step and
# BatchNorm mode while crafting (an FGSM-RS arm 1.25 eps, a TRADES arm 0.2258 eps, CFA's PGD base
# in train mode), so the shared run config leaves them open
PER_ARM = ("attack_alpha", "attack_bn")


def shared_run(rc: RunConfig, splits: Splits) -> RunConfig:
    """The study's run config with the data's defaults (eps, augmentation, imbalance) filled in
    once for every arm; the fields of `PER_ARM` stay as given, for `resolve` of each arm's config."""
    return resolve(rc, splits).model_copy(update={k: getattr(rc, k) for k in PER_ARM})


def arm_config(cfg: StudyConfig, rc: RunConfig, arm: str, seed: int, out_dir: Path,
               check_source: bool = True) -> RunConfig:
    fields = {**rc.model_dump(), "method": arm, "seed": seed}
    source = cfg.init_from.get(arm)
    if source:  # the source arm trained earlier in this seed's loop (the config checks the order)
        weights = arm_dir(out_dir, source, seed, len(cfg.seed_list) > 1) / FINAL
        if check_source and not weights.is_file():
            raise ClasswiseError(f"{arm} starts from the {source} arm's weights, but {weights} does not exist")
        fields["init_weights"] = str(weights.resolve())
    fields["method_params"] = cfg.method_params.get(arm, {})  # the base run's parameters belong to its own method
    return RunConfig(**fields)


def check_no_arm_dropped(out_dir: Path, cfg: StudyConfig) -> None:
    try:
        old = json.loads((out_dir / CONFIG).read_text()).get("methods", [])
    except (OSError, ValueError, AttributeError):
        return  # prepare_run_dir names what is wrong with the file
    dropped = [m for m in old if m not in cfg.methods]
    if dropped:
        keep = ",".join([*old, *(m for m in cfg.methods if m not in old)])
        raise ClasswiseError(f"--resume: {out_dir} holds the arm(s) {', '.join(dropped)}; a resume may add arms, "
                             f"not drop them: give --methods {keep} or use a new --out")


def _checkpoint(arm_cfg: RunConfig, run_dir: Path, splits: Splits) -> tuple[RunConfig, dict | None]:
    """The run's resolved config and its checkpoint's state, if one was made with these settings."""
    cfg, ckpt = resolve(arm_cfg, splits), run_dir / CHECKPOINT
    state = read_weights_file(ckpt) if ckpt.is_file() else None
    return cfg, state if isinstance(state, dict) and state.get("config") == cfg.model_dump() else None


def _trained(cfg: RunConfig, state: dict) -> bool:
    history = state["history"]
    return state["epoch"] >= cfg.epochs or bool(history and history[-1].get("stopped"))


def _finished(arm_cfg: RunConfig, run_dir: Path, splits: Splits) -> RunOutcome | None:
    """The outcome of a run this folder already finished with these settings, read back from its
    checkpoint and eval.json (a resumed study re-reports without re-evaluating), else None."""
    ev, final = run_dir / "eval.json", run_dir / FINAL
    if not (ev.is_file() and final.is_file()) or ev.stat().st_mtime < final.stat().st_mtime:
        return None
    cfg, state = _checkpoint(arm_cfg, run_dir, splits)
    if state is None or not _trained(cfg, state):
        return None
    spec = AttackSpec(name="pgd", eps=cfg.eps, steps=cfg.test_steps, norm=cfg.norm, restarts=cfg.test_restarts)
    res = load_eval(ev, REEVALUATE)
    if spec.label not in res.adv_pred or len(res.classes) != len(splits.classes):
        return None
    return RunOutcome(cfg, state["history"], res, spec, float(sum(h.get("seconds", 0) for h in state["history"])),
                      0.0)


def stored(cfg: StudyConfig, splits: Splits, out_dir: Path) -> tuple[dict, dict]:
    """What a resume finds, each run's files read once: the outcomes of the runs finished with
    these settings, {(arm, seed): RunOutcome}, and the runs left, {(arm, seed): share of its
    epochs still to train}, in the study's order (a run stopped mid-way goes on from its checkpoint)."""
    several, done, left = len(cfg.seed_list) > 1, {}, {}
    for seed in cfg.seed_list:
        for arm in cfg.arms:
            arm_cfg = arm_config(cfg, cfg.run, arm, seed, out_dir, check_source=False)
            run_dir = arm_dir(out_dir, arm, seed, several)
            outcome = _finished(arm_cfg, run_dir, splits)
            if outcome is not None:
                done[arm, seed] = outcome
                continue
            run_cfg, state = _checkpoint(arm_cfg, run_dir, splits)
            if state is not None and _trained(run_cfg, state):
                left[arm, seed] = 0.0  # trained, its test evaluation still to make
            else:
                left[arm, seed] = 1 - (state["epoch"] if state else 0) / run_cfg.epochs
    return done, left


def record(store: Store, rid: str, outcome: RunOutcome, classes) -> None:
    for rec in outcome.history:
        store.record_epoch(rid, rec, classes, rec["val_n_per_class"])
    store.finish(rid, outcome.evaluation)


def _test_set(rc: RunConfig, splits: Splits):
    return stratified_subset(splits.test, rc.test_limit, seed=rc.seed) if rc.test_limit else splits.test


def best_worst(run: ArmRun, splits: Splits, device, tag: str):
    """The run's best worst-class checkpoint evaluated like its last weights: (evaluation,
    epoch, whether its weights differ from the last ones), or (None, None, False) if the run
    kept none. Identical weights reuse the last evaluation; a new evaluation is cached in
    eval_best_worst.json."""
    path = run.run_dir / BEST_WORST
    if not path.exists():
        return None, None, False
    best, last = read_weights_file(path), read_weights_file(run.run_dir / FINAL)
    epoch = best.get("epoch") if isinstance(best, dict) else None
    if _same_weights(best.get("state_dict", {}), last.get("state_dict", {})):
        return run.outcome.evaluation, epoch, False
    cache = run.run_dir / "eval_best_worst.json"
    if cache.exists() and cache.stat().st_mtime >= path.stat().st_mtime:
        return load_eval(cache, REEVALUATE), epoch, True
    rc, dev = run.outcome.config, resolve_device(device)
    model = build_model(rc, splits.train)
    load_weights(model, path, best)
    console.print(f"{tag}evaluating the best worst-class checkpoint (epoch {epoch})")
    res = evaluate(model.to(dev), _test_set(rc, splits), [run.outcome.attack], device=dev, seed=rc.seed)
    atomic_write_json(cache, res.to_dict())
    return res, epoch, True


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def sanity(run: ArmRun, splits: Splits, device) -> list[dict]:
    """The sanity checks of a run's test evaluation, probing the weights the run saved."""
    rc = run.outcome.config
    model = build_model(rc, splits.train)
    load_weights(model, run.run_dir / FINAL)
    return sanity_checks(run.outcome.evaluation, model.to(resolve_device(device)), _test_set(rc, splits),
                         spec=run.outcome.attack, seed=rc.seed).to_dict()


def metrics_lines(runs: list[ArmRun], classes: list[str]) -> str:
    """Every run's per-epoch records (its checkpoint's history, which its metrics.jsonl was
    written from), each labelled with its arm and seed."""
    lines = [json.dumps({"model": r.arm, "classes": classes, **rec, "seed": r.seed})
             for r in runs for rec in r.outcome.history]
    return "\n".join(lines) + "\n"
