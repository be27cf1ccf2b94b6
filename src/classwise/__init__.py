"""classwise: train and audit image classifiers class by class.

The public API is imported on first use, so that `classwise --help` and small commands start
without loading every submodule."""

import sys
from importlib import import_module
from types import ModuleType

__version__ = "0.1.0"

_API = {
    "AttackSpec": "attacks", "attack": "attacks", "TrainConfig": "config", "ClassData": "data",
    "load_dataset": "data", "ClasswiseError": "errors", "EvalResult": "evaluate", "evaluate": "evaluate",
    "disparity": "metrics", "per_class_table": "metrics", "create_model": "models", "load_weights": "models",
    "StudyConfig": "study", "run_study": "study", "train": "train",
    "AutoAttackSpec": "attacks", "VictimSpec": "attacks", "IntoClassSpec": "attacks", "eps_curve": "evaluate",
    "curve_table": "evaluate", "half_accuracy_eps": "evaluate", "victim_table": "evaluate",
    "victim_summary": "evaluate", "into_table": "evaluate", "sanity_checks": "evaluate", "SanityReport": "evaluate",
    "robustbench_json": "evaluate",
    "build_custom_model": "models.custom", "wrap_normalization": "models.custom",
    "load_custom_weights": "models.custom",
    "progress_hook": "progress", "ProgressEvent": "progress",
    "StudyResult": "result", "PerClassResult": "result", "load_study_result": "result",
}
__all__ = [*_API, "__version__"]
# API functions named like the subpackage that holds them (`classwise.train` is both): importing
# the subpackage binds it to that name on this package, so the subpackage is made callable as
# the function, and `cw.train(...)`, `cw.train.trainer` and `import classwise.train` all work
_CALLABLE = {name for name, module in _API.items() if name == module}


class _CallableModule(ModuleType):
    def __call__(self, *args, **kwargs):
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(ModuleType):
    def __setattr__(self, name, value):
        if name in _CALLABLE and isinstance(value, ModuleType) and not callable(value):
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    if name in _CALLABLE:
        return import_module(f".{name}", __name__)  # the callable subpackage, before and after import
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'classwise' has no attribute {name!r}")
