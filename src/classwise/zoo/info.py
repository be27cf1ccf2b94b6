"""The leaderboard's published numbers and facts: RobustBench's `model_info/<dataset>/<threat>/
<name>.json` (clean_acc, autoattack_acc or corruptions_acc, architecture, additional_data,
venue, eps). Read from a local copy of `model_info/` (`--leaderboard DIR`), else from the study's
own cache of earlier fetches, else fetched from RobustBench's GitHub repository when there is a
network; a fetched file is cached in the study folder so that every later report reads the same
numbers. The installed robustbench package does not ship these files."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ClasswiseError
from ..io import atomic_write_json
from .names import THREATS, threat_key

RAW_URL = "https://raw.githubusercontent.com/RobustBench/robustbench/master/model_info/{dataset}/{threat}/{name}.json"
CACHE = "model_info"  # inside the study folder


@dataclass
class ModelInfo:
    name: str
    dataset: str
    threat: str
    clean_acc: float | None  # fractions, from the JSON's percent strings
    robust_acc: float | None  # autoattack_acc (linf, l2) or corruptions_acc (corruptions)
    architecture: str | None
    additional_data: bool | None
    venue: str | None
    year: int | None
    eps: str | None
    source: str  # the file or address it came from

    def to_dict(self) -> dict:
        return asdict(self)


def _fraction(value) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v / 100 if v == v else None


def _year(venue) -> int | None:
    years = re.findall(r"(?:19|20)\d\d", str(venue or ""))
    return int(years[-1]) if years else None


def parse_info(raw: dict, name: str, dataset: str, threat: str, source: str) -> ModelInfo:
    threat = threat_key(threat)
    robust = raw.get("corruptions_acc") if threat == "corruptions" else raw.get("autoattack_acc")
    extra = raw.get("additional_data")
    return ModelInfo(name, dataset, threat, _fraction(raw.get("clean_acc")), _fraction(robust),
                     raw.get("architecture") or None, extra if isinstance(extra, bool) else None,
                     raw.get("venue") or None, _year(raw.get("venue")), raw.get("eps"), source)


def candidates(folder, name: str, dataset: str, threat: str) -> list[Path]:
    """Where a model's JSON may sit under a local copy: the repository, its model_info/ or a
    data set's folder."""
    folder, sub = Path(folder), Path(dataset) / THREATS[threat_key(threat)] / f"{name}.json"
    return [folder / sub, folder / "model_info" / sub, folder / THREATS[threat_key(threat)] / f"{name}.json",
            folder / f"{name}.json"]


def _read(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClasswiseError(f"{path} is not a RobustBench model_info JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ClasswiseError(f"{path} is not a RobustBench model_info JSON (not an object)")
    return raw


def leaderboard_names(folder, dataset: str, threat: str) -> list[str]:
    """Every model a local model_info copy lists for this data set and threat."""
    for d in (Path(folder) / dataset / THREATS[threat_key(threat)],
              Path(folder) / "model_info" / dataset / THREATS[threat_key(threat)]):
        if d.is_dir():
            return sorted(p.stem for p in d.glob("*.json"))
    return []


def check_leaderboard_dir(folder) -> None:
    if folder is not None and not Path(folder).is_dir():
        raise ClasswiseError(f"--leaderboard {folder} is not a folder; give a copy of RobustBench's model_info/ "
                             "(model_info/<dataset>/<threat>/<name>.json)")


class InfoSource:
    """Model infos for one data set and threat: local copy, then the study's cache, then the
    network (tried until its first failure, so that an offline run asks once)."""

    def __init__(self, dataset: str, threat: str, *, leaderboard=None, cache_dir=None, fetch: bool = True,
                 timeout: float = 10.0):
        check_leaderboard_dir(leaderboard)
        self.dataset, self.threat = dataset, threat_key(threat)
        self.leaderboard = Path(leaderboard) if leaderboard is not None else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.fetch, self.timeout = fetch, timeout
        self.offline_reason: str | None = None if fetch else "fetching was turned off"

    def get(self, name: str) -> ModelInfo | None:
        for folder in (self.leaderboard, self.cache_dir):
            if folder is None:
                continue
            for path in candidates(folder, name, self.dataset, self.threat):
                if path.is_file():
                    return parse_info(_read(path), name, self.dataset, self.threat, str(path))
        if self.offline_reason is not None:
            return None
        url = RAW_URL.format(dataset=self.dataset, threat=THREATS[self.threat], name=name)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310 - a fixed https address
                raw = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None  # not on the leaderboard
            self.offline_reason = f"{url}: HTTP {exc.code}"
            return None
        except (OSError, ValueError) as exc:
            self.offline_reason = f"{url}: {' '.join(str(exc).split())}"
            return None
        if not isinstance(raw, dict):
            return None
        if self.cache_dir is not None:
            atomic_write_json(self.cache_dir / self.dataset / THREATS[self.threat] / f"{name}.json", raw)
        return parse_info(raw, name, self.dataset, self.threat, url)
