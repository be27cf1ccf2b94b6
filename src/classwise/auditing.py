"""`audit(model, data, threats=..., out=...)`: a per-class robustness audit in RobustBench's
shape, the library call behind `classwise evaluate`. It evaluates every threat per class
(`evaluate`), optionally an eps curve, the sanity checks of a robust evaluation and the
corruption summary, and with `out` writes the files `classwise evaluate --out` writes:
eval.json, results.json, per_class.csv, robustbench.json (and eps_curve.json/.csv, and under
corruptions corruption_per_class.csv and figures/corruption_<name>.png), each atomically.

It sits above `evaluation` (which it calls), `analysis` and `report` (the corruption summary and
heatmap) and `study.outdir` (what an output folder holds); `audit` is the function, `auditing`
its module, as `evaluate` and `evaluation` are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .attacks import AttackSpec
from .evaluation.evaluate import as_data, evaluate, labelled_threats
from .evaluation.result import EvalResult
from .evaluation.robustbench import robustbench_json
from .evaluation.sanity import SanityReport, sanity_checks
from .evaluation.threats import runner_for
from .evaluation.views import curve_table, half_accuracy_eps
from .evaluation.views import eps_curve as run_eps_curve
from .io import atomic_write_json, atomic_write_text, check_out_dir, check_out_file

CLASS_THREATS = ("victim", "into")  # the runners' kinds of the class-targeted threats


@dataclass
class AuditResult:
    """What `audit` found: the evaluation (`result`, an `EvalResult`), the eps curve and sanity
    report when asked for, the corruption summary, RobustBench's fields, and the files written
    (none without `out`)."""

    result: EvalResult
    name: str
    dataset: str | None
    checkpoint_format: str | None
    threats: dict  # label -> spec, as evaluated
    curve: EvalResult | None = None
    curve_attack: AttackSpec | None = None
    sanity: SanityReport | None = None
    corruptions: dict | None = None  # the corruption summary (results.json's "corruptions")
    robustbench: dict = field(default_factory=dict)  # `robustbench_json` of the result
    files: list[Path] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)  # the corruption heatmaps written

    def per_class(self, key: str = "clean") -> pd.DataFrame:
        return self.result.per_class(key)

    def summary(self, key: str = "clean") -> dict:
        return self.result.summary(key)

    def summaries(self) -> dict[str, dict]:
        """`summary` of clean and of every untargeted attack."""
        return {k: self.result.summary(k) for k in ["clean", *self.result.robust_keys]}

    def table(self) -> pd.DataFrame:
        """Per class: clean accuracy and accuracy under each untargeted attack (per_class.csv)."""
        res = self.result
        table = res.per_class("clean")[["class", "accuracy"]].rename(columns={"accuracy": "clean"})
        for key in res.robust_keys:
            table[key] = res.per_class(key)["accuracy"]
        return table

    def class_threats(self) -> dict:
        """The class-targeted threats (victim, into) by label."""
        return {k: s for k, s in self.threats.items() if runner_for(s).kind in CLASS_THREATS}

    def record(self) -> dict:
        """results.json: the model, data set, first robust attack, every attack's summary and
        notes, the class-targeted threats, the sanity report and the corruption summary."""
        res, summaries = self.result, self.summaries()
        keys = res.robust_keys
        first = keys[0] if keys else None
        return {
            "arch": self.name, "dataset": self.dataset, "checkpoint_format": self.checkpoint_format,
            "attack": res.attacks[first] if first else None, "clean": summaries["clean"],
            "robust": summaries[first] if first else None,
            "attacks": {k: {"spec": res.attacks[k], "summary": summaries[k], "notes": res.notes.get(k, [])}
                        for k in keys},
            "threats": {k: s.model_dump() for k, s in self.class_threats().items()},
            "sanity": self.sanity.to_dict() if self.sanity is not None else None, "corruptions": self.corruptions}


def check_audit_out(out, *, overwrite: bool = False):
    """Refuse, before any work, an `out` folder `audit` may not write: a file, unwritable, holding
    another kind of output, or holding an evaluation without `overwrite`. Returns what it holds."""
    from .study.outdir import claim_out

    if out is None:
        return None
    check_out_dir(out)
    return claim_out(out, "evaluation", overwrite=overwrite)


def audit(model, data, threats: Sequence | Mapping = (), out=None, *, name: str | None = None,
          dataset: str | None = None, checkpoint_format: str | None = None, eps_curve: Sequence[float] | None = None,
          curve_attack: AttackSpec | None = None, sanity: bool = True, skipped_corruptions: Mapping | None = None,
          robustbench_file=None, overwrite: bool = False, batch_size: int = 256, device=None, seed: int = 0,
          precision: str = "fp32", compile: bool = False, show_progress: bool = True) -> AuditResult:
    """Audit `model` (an `nn.Module` mapping [0, 1] images to logits) class by class on `data` (a
    `ClassData`, `FolderSource` or (images, labels) pair) under `threats` (specs as `evaluate`
    takes them: attacks, AutoAttack, class-targeted threats, corruptions; a sequence or a
    {label: spec} mapping).

    `eps_curve` (eps values) adds per-class accuracy over eps under `curve_attack` (default: the
    first PGD attack, else the attack of the first class-targeted threat). `sanity` runs the
    sanity checks when anything was attacked. `out` (a folder) receives the files
    `classwise evaluate --out` writes; a folder already holding an evaluation is refused before
    any work unless `overwrite`, and its old files go only once the new audit is done.
    `name`, `dataset` and `checkpoint_format` are recorded in results.json and robustbench.json
    (defaults: the model's class name and the data's name); `skipped_corruptions` ({name: why})
    is recorded with the corruption summary; `robustbench_file` also writes RobustBench's
    fields to that file. The other keywords go to `evaluate`."""
    from .checks import checked_inputs

    out = Path(out) if out is not None else None
    held = check_audit_out(out, overwrite=overwrite)
    check_out_file(robustbench_file, "robustbench_file")
    data, _ = checked_inputs(model, data, device, as_data)
    specs = labelled_threats(threats)
    name = name or type(model).__name__
    dataset = dataset or getattr(data, "name", None) or None
    lowered = {"precision": precision, "compile": compile}
    res = evaluate(model, data, specs, batch_size=batch_size, device=device, seed=seed, show_progress=show_progress,
                   **lowered)
    found = AuditResult(res, name, dataset, checkpoint_format, specs)
    kinds = {label: runner_for(spec).kind for label, spec in specs.items()}
    class_threats = [s for k, s in specs.items() if kinds[k] in CLASS_THREATS]
    if eps_curve is not None:
        found.curve_attack = curve_attack or _curve_attack(specs, class_threats)
        found.curve = run_eps_curve(model, data, found.curve_attack, eps_curve, batch_size=batch_size, device=device,
                                    seed=seed, show_progress=show_progress, **lowered)
    if sanity and any(kind != "corruption" for kind in kinds.values()):
        spec = next((s for s in specs.values() if isinstance(s, AttackSpec)),
                    class_threats[0].attack if class_threats else None)
        found.sanity = sanity_checks(res, model, data, curve=found.curve, spec=spec, batch_size=batch_size,
                                     device=device, seed=seed)
    keys = res.robust_keys
    skipped = dict(skipped_corruptions or {})
    if skipped or "corruption" in kinds.values():
        found.corruptions = _corruption_summary(res, keys[0] if keys else None, skipped)
    found.robustbench = robustbench_json(res, dataset=dataset, name=name, architecture=name,
                                         unreliable=None if found.sanity is None else not found.sanity.passed)
    if robustbench_file is not None:
        atomic_write_json(robustbench_file, found.robustbench)
        found.files.append(Path(robustbench_file))
    if out is not None:
        _write(found, out, replace=held is not None)
    return found


def _curve_attack(specs: dict, class_threats: list) -> AttackSpec:
    from .errors import ClasswiseError

    base = next((s for s in specs.values() if isinstance(s, AttackSpec) and s.name == "pgd"), None)
    base = base or (class_threats[0].attack if class_threats else None)
    if base is None:
        raise ClasswiseError("an eps curve needs a PGD attack: give curve_attack=AttackSpec(...) or a PGD threat")
    return base


def _corruption_summary(res: EvalResult, attack: str | None, skipped: dict) -> dict | None:
    from .analysis.corruption import corruption_keys, summary

    if not corruption_keys(res):
        return {"skipped": skipped} if skipped else None
    return {**summary(res, attack), "skipped": skipped}


def _write(found: AuditResult, out: Path, *, replace: bool) -> None:
    """The audit's files in `out`; with `replace`, the evaluation it held goes first (only now
    that the new one is done)."""
    from .analysis.corruption import corruption_keys
    from .io import safe_name
    from .study.outdir import clear_outputs

    res, curve = found.result, found.curve
    if replace:
        clear_outputs(out, "evaluation")
    out.mkdir(parents=True, exist_ok=True)
    if found.corruptions is not None and corruption_keys(res):
        from .report.corruption import corruption_section

        keys = res.robust_keys
        _, figures, _ = corruption_section(out, {safe_name(found.name): res}, keys[0] if keys else None)
        found.figures = {k: Path(v) for k, v in figures.items()}
        found.files += [out / "corruption_per_class.csv", *found.figures.values()]
    files = {"eval.json": res.to_dict(), "results.json": found.record(),
             "per_class.csv": found.table().to_csv(index=False), "robustbench.json": found.robustbench}
    if curve is not None:
        files["eps_curve.json"] = curve.to_dict()
        files["eps_curve.csv"] = curve_table(curve).merge(half_accuracy_eps(curve).drop(columns="clean"),
                                                          on="class").to_csv(index=False)
    for file, content in files.items():
        write = atomic_write_text if isinstance(content, str) else atomic_write_json
        write(out / file, content)
        found.files.append(out / file)
