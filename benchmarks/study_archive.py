"""A multi-sitting study's finished runs, kept in the repository, and its three-seed tables.

The Fashion-MNIST mitigation study at the whole `quick` budget (14 arms x 3 seeds, issue 25) needs
about 9-10 hours of two cores; a sitting here is three, and nothing outside the repository
survives between sittings (the weights alone are 52 MB a run). So each sitting runs a part of the
study (`classwise study ... --out DIR`), and `pack` keeps what the tables need of each finished run:
its test predictions (clean and PGD-20, last and best-worst-class checkpoint: 13 KB a run as
uint8 in a compressed .npz, against 1.7 MB of eval.json), its configuration and its epoch
history. `tables` then feeds every archived run to classwise's own study bootstrap
(`SeedBootstrap`: seeds and test images resampled, paired) and prints the study report's two
tables as Markdown:

    python benchmarks/study_archive.py pack /work/runs/fmfull/study benchmarks/results/fmnist-quick-study
    python benchmarks/study_archive.py tables benchmarks/results/fmnist-quick-study --reference pgd

A run is archived once: packing it again with other settings or other test labels is refused.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from classwise.analysis.seeds import Evaluation, SeedBootstrap
from classwise.evaluation import load_eval
from classwise.models.checkpoint import read_weights_file
from classwise.rounding import points
from classwise.training.trainer import BEST_WORST, CHECKPOINT, FINAL

LAST, BEST = "last", "best"


def _finished_runs(study: Path):
    """(arm, seed, run folder) of every run of `study` whose test evaluation is newer than its weights."""
    for ev in sorted(study.glob("*/seed*/eval.json")) + sorted(study.glob("*/eval.json")):
        run = ev.parent
        final = run / FINAL
        if final.is_file() and ev.stat().st_mtime >= final.stat().st_mtime:
            seed = int(run.name[4:]) if run.name.startswith("seed") else None
            arm = run.parent.name if seed is not None else run.name
            yield arm, seed, run


def pack(study: Path, archive: Path) -> list[str]:
    archive.mkdir(parents=True, exist_ok=True)
    packed = []
    for arm, seed, run in _finished_runs(study):
        state = read_weights_file(run / CHECKPOINT)
        config = state["config"]
        seed = config["seed"] if seed is None else seed
        name = f"{arm}-seed{seed}"
        res = load_eval(run / "eval.json")
        attack = f"pgd{config['test_steps']}"
        arrays = {"labels": res.labels, f"{LAST}/clean": res.clean_pred, f"{LAST}/robust": res.adv_pred[attack]}
        best_epoch = None
        if (run / BEST_WORST).is_file():
            best_epoch = read_weights_file(run / BEST_WORST).get("epoch")
            if (run / "eval_best_worst.json").is_file():  # written only where its weights differ from the last
                best = load_eval(run / "eval_best_worst.json")
                arrays.update({f"{BEST}/clean": best.clean_pred, f"{BEST}/robust": best.adv_pred[attack]})
        meta = {"arm": arm, "seed": seed, "classes": res.classes, "attack": attack, "config": config,
                "history": state["history"], "best_worst_epoch": best_epoch,
                "packed_from": str(run), "packed": datetime.date.today().isoformat()}
        old = archive / f"{name}.json"
        if old.is_file():
            kept = json.loads(old.read_text())
            if kept["config"] != config:
                sys.exit(f"{name}: archived with other settings than {run}; not packed")
            if not np.array_equal(np.load(archive / f"{name}.npz")["labels"], res.labels):
                sys.exit(f"{name}: archived with other test labels than {run}; not packed")
            continue
        np.savez_compressed(archive / f"{name}.npz", **{k: np.asarray(v, dtype=np.uint8) for k, v in arrays.items()})
        old.write_text(json.dumps(meta, indent=1) + "\n")
        packed.append(name)
    return packed


def load(archive: Path) -> tuple[list[str], list[dict], list[Evaluation]]:
    metas, evals, classes = [], [], None
    for path in sorted(archive.glob("*.json")):
        meta = json.loads(path.read_text())
        classes = classes or meta["classes"]
        if meta["classes"] != classes:
            sys.exit(f"{path}: other classes than the rest of the archive")
        arrays = np.load(path.with_suffix(".npz"))
        labels = arrays["labels"].astype(np.int64)
        for ckpt in (LAST, BEST):
            if f"{ckpt}/clean" in arrays:
                evals.append(Evaluation((meta["arm"], ckpt), meta["seed"], labels,
                                        {m: arrays[f"{ckpt}/{m}"] == labels for m in ("clean", "robust")}))
        metas.append(meta)
    if not metas:
        sys.exit(f"{archive}: no archived run")
    return classes, metas, evals


def _pct(x: float) -> str:
    return points(x)


def _signed(x: float) -> str:
    return points(x, sign=True)


def tables(archive: Path, reference: str | None, resamples: int) -> str:
    classes, metas, evals = load(archive)
    arms = sorted({m["arm"] for m in metas}, key=lambda a: (a != "standard", a != reference, a))
    boot = SeedBootstrap(evals, classes, resamples=resamples, rng=0)
    seeds = {a: sorted(m["seed"] for m in metas if m["arm"] == a) for a in arms}
    out = ["| arm | seeds | clean class mean | PGD-20 class mean [95%] | PGD-20 worst class [95%] | its class | "
           f"worst vs {reference} | mean vs {reference} | each seed's worst class |",
           "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |"]
    per_class = {}
    for arm in arms:
        clean, robust = boot.summary((arm, LAST), "clean"), boot.summary((arm, LAST), "robust")
        table = boot.per_class((arm, LAST), "robust")
        per_class[arm] = table
        worst_class = table["class"][int(np.nanargmin(table["mean"]))]
        each = []
        for s in seeds[arm]:
            ev = next(e for e in evals if e.key == (arm, LAST) and e.seed == s)
            n = np.bincount(ev.labels, minlength=len(classes))
            acc = np.bincount(ev.labels, ev.correct["robust"], len(classes)) / n
            each.append(f"{classes[int(np.argmin(acc))]} {_pct(acc.min())}")
        if reference in arms and arm != reference:
            d = boot.difference((reference, LAST), (arm, LAST), "robust")
            vs = [f"{_signed(d[s]['difference'])} [{_signed(d[s]['low'])}, {_signed(d[s]['high'])}]"
                  for s in ("worst", "mean")]
        else:
            vs = ["—", "—"]
        r = robust
        out.append(f"| {arm} | {','.join(map(str, seeds[arm]))} | {_pct(clean['mean']['estimate'])} | "
                   f"{_pct(r['mean']['estimate'])} [{_pct(r['mean']['low'])}, {_pct(r['mean']['high'])}] | "
                   f"{_pct(r['worst']['estimate'])} [{_pct(r['worst']['low'])}, {_pct(r['worst']['high'])}] | "
                   f"{worst_class} | {vs[0]} | {vs[1]} | {'; '.join(each)} |")
    out += ["", "PGD-20 accuracy per class (mean over the seeds, 95% bootstrap interval):", "",
            "| class | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1) + "|"]
    for i, c in enumerate(classes):
        cells = [f"{_pct(t['mean'][i])} [{points(t['ci_low'][i], 0)}, {points(t['ci_high'][i], 0)}]"
                 for t in per_class.values()]
        out.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = p.add_subparsers(dest="verb", required=True)
    pk = verbs.add_parser("pack", help="archive a study folder's finished runs")
    pk.add_argument("study", type=Path)
    pk.add_argument("archive", type=Path)
    tb = verbs.add_parser("tables", help="the archived runs' tables, as Markdown")
    tb.add_argument("archive", type=Path)
    tb.add_argument("--reference", default="pgd", help="the arm the differences are against")
    tb.add_argument("--resamples", type=int, default=2000)
    args = p.parse_args(argv)
    if args.verb == "pack":
        packed = pack(args.study, args.archive)
        print(f"packed {len(packed)} runs: {', '.join(packed) or 'none new'}")
    else:
        print(tables(args.archive, args.reference, args.resamples))


if __name__ == "__main__":
    main()
