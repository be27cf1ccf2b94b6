"""The `robustbench` package (the extra `classwise[robustbench]`), imported the way it works here.

RobustBench 1.1.1's top-level `__init__` imports its benchmark module, which imports the GitHub
`autoattack` module (PyPI's `pyautoattack` installs as `pyautoattack`) and its data loaders,
which import `pkg_resources` (gone from setuptools 81 on). We need neither: the zoo's model
definitions (`robustbench.model_zoo`) and its loader (`robustbench.utils.load_model`, with its
model directory layout and download) import without them. So the package is entered as a bare
namespace over its own folder, its `__init__` not run, and those two modules imported from it:
RobustBench's own code, unchanged, with nothing stubbed or patched."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import ClasswiseError

INSTALL_HINT = ("the RobustBench zoo needs the robustbench package (model definitions and loader): "
                "pip install 'classwise[robustbench]'")


@dataclass(frozen=True)
class RobustBench:
    load_model: object  # robustbench.utils.load_model
    models: dict  # robustbench.model_zoo.model_dicts: BenchmarkDataset -> ThreatModel -> name -> entry
    BenchmarkDataset: type
    ThreatModel: type
    utils: types.ModuleType
    version: str | None


def available() -> bool:
    """Whether the robustbench package (with its model zoo) is installed; imports nothing."""
    try:
        spec = importlib.util.find_spec("robustbench")
    except ValueError:  # a robustbench module already in sys.modules without a spec
        return True
    if spec is None or not spec.submodule_search_locations:
        return False
    # torchattacks' wheel carries a stray `robustbench/` without the zoo
    return any((Path(p) / "model_zoo").is_dir() for p in spec.submodule_search_locations)


# torchattacks 3.5.1's wheel carries an old copy of robustbench/ that overwrites the installed
# package's files (`make bench` installs it): the loader and model zoo we would import are checked
# against the hashes robustbench's own install recorded
_CHECKED = ("robustbench/utils.py", "robustbench/model_zoo/models.py", "robustbench/model_zoo/cifar10.py")


def _overwritten() -> list[str]:
    """Files of the installed robustbench whose content is not what its wheel installed."""
    import base64
    import hashlib
    from importlib import metadata

    try:
        recorded = {str(f): f for f in metadata.files("robustbench") or []}
    except metadata.PackageNotFoundError:
        return []  # not installed by pip (e.g. a source checkout on the path): nothing to compare with
    bad = []
    for name in _CHECKED:
        f = recorded.get(name)
        if f is None or f.hash is None or f.hash.mode != "sha256":
            continue
        path = Path(f.locate())
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode() \
            if path.is_file() else None
        if digest != f.hash.value:
            bad.append(str(path))
    return bad


@cache
def robustbench() -> RobustBench:
    """RobustBench's loader and model dictionary, or one line saying how to install them."""
    if not available():
        raise ClasswiseError(INSTALL_HINT)
    bad = _overwritten()
    if bad:
        raise ClasswiseError(f"the installed robustbench's files are not its own ({bad[0]} differs; torchattacks 3.5.1 "
                             "ships a stray robustbench/ that overwrites them): pip install --force-reinstall "
                             "--no-deps 'robustbench>=1.1.1,<1.2'")
    if "robustbench" not in sys.modules:
        spec = importlib.util.find_spec("robustbench")
        pkg = types.ModuleType("robustbench", "RobustBench, entered without its top-level __init__")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__ = spec
        pkg.__file__ = spec.origin
        sys.modules["robustbench"] = pkg
    try:
        with warnings.catch_warnings():  # timm's and torch's deprecation notes on import
            warnings.simplefilter("ignore")
            utils = importlib.import_module("robustbench.utils")
            zoo = importlib.import_module("robustbench.model_zoo")
            enums = importlib.import_module("robustbench.model_zoo.enums")
    except ImportError as exc:
        raise ClasswiseError(f"the robustbench package does not import ({type(exc).__name__}: {exc}); "
                             f"reinstall it: pip install --force-reinstall 'classwise[robustbench]'") from exc
    try:
        from importlib.metadata import version

        ver = version("robustbench")
    except Exception:  # noqa: BLE001 - only shown in results
        ver = None
    return RobustBench(utils.load_model, zoo.model_dicts, enums.BenchmarkDataset, enums.ThreatModel, utils, ver)
