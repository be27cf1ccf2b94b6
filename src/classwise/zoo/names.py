"""Zoo models by name: RobustBench's names per data set and threat model, the weights files its
loader looks for, and `load_model`, which goes through RobustBench's own loader so that its
architectures, its checkpoint fix-ups and its download are the ones the leaderboard used.

RobustBench keeps weights in `<model_dir>/<dataset>/<threat>/<name>.pt` (an ensemble in
`<name>.pt_m0.pt`, `<name>.pt_m1.pt`, ...). A model whose files are there loads without the
network; a missing one is downloaded by RobustBench's code unless `download=False`; a model that
cannot be had is one line naming the file that was looked for."""

from __future__ import annotations

import difflib
import warnings
from pathlib import Path

from ..errors import ClasswiseError
from .package import robustbench

DATASETS = ("cifar10", "cifar100", "imagenet")
# our spelling -> RobustBench's ThreatModel value (also its folder name)
THREATS = {"linf": "Linf", "l2": "L2", "corruptions": "corruptions"}
DEFAULT_MODEL_DIR = Path("models")  # RobustBench's own default, ./models


def threat_key(text: str) -> str:
    """`linf`, `Linf`, `L2`, `corruptions` -> our key, or one line listing the choices."""
    key = str(text).strip().lower()
    if key not in THREATS:
        raise ClasswiseError(f"unknown threat model '{text}'; choose from: {', '.join(THREATS)}")
    return key


def check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ClasswiseError(f"RobustBench has no data set '{dataset}'; choose from: {', '.join(DATASETS)}")
    return dataset


def _entries(dataset: str, threat: str) -> dict:
    rb = robustbench()
    check_dataset(dataset)
    threat = threat_key(threat)
    by_threat = rb.models[rb.BenchmarkDataset(dataset)]
    tm = rb.ThreatModel(THREATS[threat])
    if tm not in by_threat:
        have = ", ".join(k for k, v in THREATS.items() if rb.ThreatModel(v) in by_threat)
        raise ClasswiseError(f"RobustBench has no {threat} leaderboard for {dataset} (it has: {have})")
    return by_threat[tm]


def names(dataset: str = "cifar10", threat: str = "linf") -> list[str]:
    """The model names of the installed robustbench package's zoo for this data set and threat."""
    return list(_entries(dataset, threat))


def check_name(name: str, dataset: str = "cifar10", threat: str = "linf") -> str:
    known = _entries(dataset, threat)
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3)
        raise ClasswiseError(f"no RobustBench model '{name}' for {dataset} {threat}"
                             + (f"; did you mean {', '.join(close)}?" if close else
                                f"; `classwise zoo --list --dataset {dataset} --threat {threat}` lists them"))
    return name


def _timm_name(name: str, dataset: str, threat: str) -> str | None:
    """RobustBench serves some models through timm's hub; their weights are not in model_dir."""
    import timm

    tname = f"{name.lower().replace('-', '_')}_{dataset}_{THREATS[threat].lower()}"
    return tname if timm.is_model(tname) else None


def weight_files(name: str, dataset: str = "cifar10", threat: str = "linf",
                 model_dir=DEFAULT_MODEL_DIR) -> list[Path]:
    """The files RobustBench's loader reads for `name` (empty for a model timm fetches itself)."""
    threat = threat_key(threat)
    entry = _entries(dataset, threat)[check_name(name, dataset, threat)]
    if _timm_name(name, dataset, threat):
        return []
    base = Path(model_dir) / dataset / THREATS[threat] / f"{name}.pt"
    ids = entry.get("gdrive_id")
    if isinstance(ids, list):
        return [Path(f"{base}_m{i}.pt") for i in range(len(ids))]
    return [base]


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_model(name: str, dataset: str = "cifar10", threat: str = "linf", model_dir=DEFAULT_MODEL_DIR, *,
               download: bool = True):
    """RobustBench zoo model `name` in eval mode, taking [0, 1] images (normalisation, where the
    model has one, is inside it, as RobustBench builds it). Loaded by RobustBench's own
    `load_model` from `model_dir` in its layout; missing weights are downloaded by it unless
    `download=False`. Any failure is one `ClasswiseError` line naming the file looked for."""
    rb = robustbench()
    threat = threat_key(threat)
    check_name(name, dataset, threat)
    files = weight_files(name, dataset, threat, model_dir)
    missing = [f for f in files if not f.is_file()]
    where = (f"{missing[0]}" + (f" (and {len(missing) - 1} more ensemble members)" if len(missing) > 1 else "")
             if missing else None)
    if missing and not download:
        raise ClasswiseError(f"{name}: no weights file {where}; put RobustBench's file there "
                             f"(layout <model_dir>/{dataset}/{THREATS[threat]}/<name>.pt) or allow the download")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = rb.load_model(name, model_dir=str(model_dir), dataset=dataset, threat_model=THREATS[threat])
    except ClasswiseError:
        raise
    except Exception as exc:  # noqa: BLE001 - RobustBench's and torch's errors, as one line
        if missing:
            raise ClasswiseError(f"{name}: no weights file {where}, and RobustBench's download failed "
                                 f"({_reason(exc)}); put the file there to load it without the network") from exc
        if not files:
            raise ClasswiseError(f"{name}: timm could not build or fetch it ({_reason(exc)}); its weights come "
                                 "from the Hugging Face hub (cache: ~/.cache/huggingface)") from exc
        raise ClasswiseError(f"{name}: {files[0]} does not load ({_reason(exc)}); a truncated download? "
                             "delete it to download again") from exc
    return model.eval()
