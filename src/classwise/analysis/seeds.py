"""A study's uncertainty over seeds and test images: one bootstrap for every arm, checkpoint
and metric of a study, so that every summary and every difference between two arms gets its
interval from the same resamples.

Each resample draws the seeds with replacement (the same draw for every arm) and, within
each seed's test images, the images of each class with replacement (the same draw for every
run evaluated on those images: paired). A summary of an arm in a resample is computed from its
per-class accuracy averaged over the drawn seeds. With one seed only the images vary."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..rounding import points
from .stats import bootstrap_class_accuracy, class_stats, percentile_interval, weakest_probability


@dataclass
class Evaluation:
    """One run's per-image outcomes: `correct[metric]` is a bool array aligned with `labels`."""

    key: Hashable  # what the run is an instance of, e.g. (arm, checkpoint)
    seed: int
    labels: np.ndarray
    correct: dict[str, np.ndarray]


class SeedBootstrap:
    def __init__(self, evaluations: Sequence[Evaluation], classes: Sequence[str], *, resamples: int = 1000,
                 rng: int | None = 0, confidence: float = 0.95):
        self.classes = list(classes)
        self.confidence = confidence
        self.seeds = sorted({e.seed for e in evaluations})
        self.rows = list(dict.fromkeys((e.key, m) for e in evaluations for m in e.correct))
        row_index = {r: i for i, r in enumerate(self.rows)}
        seed_index = {s: i for i, s in enumerate(self.seeds)}
        n_cls, n_seeds = len(self.classes), len(self.seeds)
        gen = np.random.default_rng(rng)
        # (B, rows, seeds, classes); NaN where a row was not evaluated at a seed
        self.samples = np.full((resamples, len(self.rows), n_seeds, n_cls), np.nan)
        self.observed = np.full((len(self.rows), n_seeds, n_cls), np.nan)
        first = np.asarray(evaluations[0].labels)
        same_images = all(np.array_equal(np.asarray(e.labels), first) for e in evaluations)
        # one block of paired runs when every seed saw the same images, else one block per seed
        blocks = [list(evaluations)] if same_images else [[e for e in evaluations if e.seed == s] for s in self.seeds]
        for block in blocks:
            labels = np.asarray(block[0].labels)
            cells = [(row_index[(e.key, m)], seed_index[e.seed], np.asarray(c, dtype=bool))
                     for e in block for m, c in e.correct.items()]
            correct = np.stack([c for *_, c in cells])
            boot = bootstrap_class_accuracy(labels, correct, n_cls, resamples=resamples, rng=gen)
            for j, (r, s, c) in enumerate(cells):
                self.samples[:, r, s] = boot[:, j]
                n = np.bincount(labels, minlength=n_cls)
                with np.errstate(invalid="ignore", divide="ignore"):
                    self.observed[r, s] = np.bincount(labels, weights=c, minlength=n_cls) / n
        draws = gen.integers(0, n_seeds, size=(resamples, n_seeds))  # seeds drawn in each resample
        picked = np.take_along_axis(self.samples, draws[:, None, :, None], axis=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a row missing from every drawn seed: NaN
            self.seed_mean = np.nanmean(picked, axis=2)  # (B, rows, classes)
            self.observed_mean = np.nanmean(self.observed, axis=1)  # (rows, classes)

    def has(self, key, metric: str) -> bool:
        return (key, metric) in self.rows

    def _row(self, key, metric: str) -> int:
        return self.rows.index((key, metric))

    def interval(self, samples) -> tuple[float, float]:
        return percentile_interval(samples, self.confidence)

    def summary(self, key, metric: str) -> dict[str, dict]:
        """{stat: {estimate, low, high}} for the class mean, worst class, std and gap."""
        r = self._row(key, metric)
        est, boot = class_stats(self.observed_mean[r]), class_stats(self.seed_mean[:, r])
        return {s: {"estimate": float(est[s]), **dict(zip(("low", "high"), self.interval(boot[s]), strict=True))}
                for s in est}

    def difference(self, key_a, key_b, metric: str) -> dict[str, dict]:
        """{stat: {a, b, difference, low, high}}: b - a for each summary, paired resamples."""
        ra, rb = self._row(key_a, metric), self._row(key_b, metric)
        ea, eb = class_stats(self.observed_mean[ra]), class_stats(self.observed_mean[rb])
        ba, bb = class_stats(self.seed_mean[:, ra]), class_stats(self.seed_mean[:, rb])
        return {s: {"a": float(ea[s]), "b": float(eb[s]), "difference": float(eb[s] - ea[s]),
                    **dict(zip(("low", "high"), self.interval(bb[s] - ba[s]), strict=True))} for s in ea}

    def per_class(self, key, metric: str) -> pd.DataFrame:
        """class, mean over seeds, std over seeds (ddof=1; 0 with one seed), the interval of the mean."""
        r = self._row(key, metric)
        obs = self.observed[r]
        n_seen = (~np.isnan(obs)).sum(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            std = np.where(n_seen > 1, np.nanstd(obs, axis=0, ddof=1), 0.0)
        alpha = (1 - self.confidence) / 2
        low, high = np.nanquantile(self.seed_mean[:, r], [alpha, 1 - alpha], axis=0)
        return pd.DataFrame({"class": self.classes, "mean": self.observed_mean[r], "std": std,
                             "ci_low": low, "ci_high": high, "seeds": n_seen})

    def weakest(self, key, metric: str) -> dict[str, float]:
        """The probability that each class is the weakest of one run: over the seeds and the
        image resamples of each seed."""
        r = self._row(key, metric)
        per_run = self.samples[:, r]  # (B, seeds, classes)
        per_run = per_run[:, ~np.isnan(per_run).all(axis=(0, 2))]
        return dict(zip(self.classes, weakest_probability(per_run).tolist(), strict=True))


def by_config(configs: dict[str, dict], status: dict[str, str], tidy: pd.DataFrame) -> pd.DataFrame:
    """Runs grouped by their config without the seed: one row per group with its seeds, how many
    finished, and the final test class-mean accuracy (%) per attack as mean ± std over the
    seeds (sample std). `configs`/`status` map run id to config/status; `tidy` is `Store.tidy()`."""
    final = tidy[(tidy["epoch"] == -1) & (tidy["split"] == "test")]
    class_mean = final.groupby(["run", "attack"])["accuracy"].mean()
    groups: dict[str, list[str]] = {}
    for rid, cfg in configs.items():
        recipe = {k: v for k, v in cfg.items() if k != "seed"}
        if recipe.get("init_weights"):  # a study arm fine-tuned from its own seed's run (.../seed<k>/model.pt)
            recipe["init_weights"] = recipe["init_weights"].replace(f"{os.sep}seed{cfg.get('seed')}{os.sep}",
                                                                    f"{os.sep}seed*{os.sep}")
        key = json.dumps(recipe, sort_keys=True)
        groups.setdefault(key, []).append(rid)
    rows = []
    for key, ids in groups.items():
        cfg = json.loads(key)
        row = {**{k: cfg.get(k) for k in ("method", "dataset", "arch", "epochs")},
               "seeds": ",".join(str(configs[i].get("seed")) for i in ids),
               "finished": sum(status.get(i) == "finished" for i in ids)}
        for attack in sorted({a for (r, a) in class_mean.index if r in ids}):
            vals = np.array([class_mean[(i, attack)] for i in ids if (i, attack) in class_mean.index])
            std = f" ± {points(vals.std(ddof=1))}" if len(vals) > 1 else ""
            row["clean" if attack == "none" else attack] = f"{points(vals.mean())}{std}"
        rows.append(row)
    return pd.DataFrame(rows)
