"""Data set registry: each loader module registers a `DatasetSpec` under its name."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ClasswiseError, DatasetNotFoundError
from .core import ClassData

DATASETS: dict[str, DatasetSpec] = {}
# data sets named `family:argument`, e.g. `features:runs/fmnist-dr` (a constructed data set in a
# folder): the family turns the argument into a spec (see constructed.py)
FAMILIES: dict[str, Callable[[str], DatasetSpec]] = {}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    # candidate folders (relative to a search root) that may hold the files
    subdirs: tuple[str, ...]
    # absolute folders searched after the roots (e.g. Debian's /usr/share/datasets)
    system_dirs: tuple[str, ...]
    is_present: Callable[[Path], bool]
    read: Callable[[Path], tuple[ClassData, ClassData]]
    how_to_get: str
    download: Callable[[Path], None] | None = None
    hflip: bool = False  # is a horizontal flip label-preserving?
    grey: bool = False
    builtin: bool = False  # made in memory (shipped with a package or generated), no files
    needs_data_dir: bool = False  # only an explicit --data-dir says where it is
    # what `classwise study/train` train when no --arch is given: sized for the presets' budget
    default_arch: str = "mnist-cnn"
    # a long-tailed variant: its training set cut to this imbalance ratio (data/longtail.py)
    imbalance: float | None = None

    def candidates(self, roots: list[Path]) -> list[Path]:
        dirs = [Path(r) / s if s else Path(r) for r in roots for s in self.subdirs]
        return dirs + [Path(d) for d in self.system_dirs]

    def locate(self, roots: list[Path]) -> Path | None:
        if self.builtin:
            return None
        return next((d for d in self.candidates(roots) if d.is_dir() and self.is_present(d)), None)


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    DATASETS[spec.name] = spec
    return spec


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """--data-dir wins; else $CLASSWISE_DATA (os.pathsep-separated); then ./data and
    ~/.cache/classwise."""
    if data_dir:
        return [Path(data_dir).expanduser()]
    roots = [Path(p).expanduser() for p in os.environ.get("CLASSWISE_DATA", "").split(os.pathsep) if p]
    return roots + [Path.cwd() / "data", Path.home() / ".cache" / "classwise"]


def register_family(prefix: str, make: Callable[[str], DatasetSpec]) -> None:
    FAMILIES[prefix] = make


def get_spec(name: str) -> DatasetSpec:
    if not isinstance(name, str) or not name:
        raise ClasswiseError(f"a data set is named by a string, got {name!r}; choose one of: "
                             f"{', '.join(sorted(DATASETS))}")
    prefix, sep, arg = name.partition(":")
    if name not in DATASETS and sep and prefix in FAMILIES:
        return FAMILIES[prefix](arg)
    if name not in DATASETS:
        raise ClasswiseError(f"unknown data set '{name}'; choose one of: {', '.join(sorted(DATASETS))}"
                             + "".join(f", or {p}:DIR" for p in sorted(FAMILIES)))
    return DATASETS[name]


def by_hand(spec: DatasetSpec, root: Path) -> str:
    """Where to put a data set's files without the downloader (its `how_to_get` without the
    download command, with <data-dir> made the actual folder): what a failed download suggests."""
    text = re.sub(r"\s*(?:or )?[Rr]un `classwise datasets --download [^`]*`(?:,? or |\.)?\s*", " ",
                  spec.how_to_get).strip().rstrip(".")
    if "<data-dir>" in text:
        return text.replace("<data-dir>", str(root))
    return f"{text[0].lower()}{text[1:]}, or put its files in {root / spec.subdirs[0]}" if text else \
        f"put its files in {root / spec.subdirs[0]}"


def load_raw(name: str, data_dir=None, download: bool = False):
    """The official train and test sets of `name`, as found (or downloaded) on disk. The
    training set is None for evaluation-only sets (ImageNet validation, a bare image tree)."""
    spec = get_spec(name)
    if spec.builtin:
        return spec.read(None)
    if spec.needs_data_dir and not data_dir:
        raise ClasswiseError(f"data set '{name}' needs --data-dir: {spec.how_to_get}")
    roots = search_roots(data_dir)
    found = spec.locate(roots)
    if found is None and download and spec.download is not None:
        target = roots[0] / spec.subdirs[0]
        created = None  # the topmost folder the download will create
        if not target.exists():
            created = target
            while not created.parent.exists():
                created = created.parent
        try:
            spec.download(target)
        except Exception as exc:  # noqa: BLE001 - network, disk, checksum: the user needs one line
            if created is not None:  # what a failed download leaves is partial: do not leave it behind
                shutil.rmtree(created, ignore_errors=True)
            text = str(exc).strip().splitlines()
            hand = by_hand(spec, roots[0])
            raise ClasswiseError(f"downloading {name} into {target} failed ({type(exc).__name__}"
                                 f"{': ' + text[0] if text else ''}); check the network and retry, or get the files "
                                 f"by hand: {hand[0].lower()}{hand[1:]}") from exc
        if not spec.is_present(target):
            hand = by_hand(spec, roots[0])
            raise ClasswiseError(f"downloading {name} into {target} did not produce its files (no network?); "
                                 f"retry, or get the files by hand: {hand[0].lower()}{hand[1:]}")
        found = target
    if found is None:
        raise DatasetNotFoundError(name, spec.candidates(roots), spec.how_to_get)
    return spec.read(found)
