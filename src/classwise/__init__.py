"""classwise: train and audit image classifiers class by class.

The public API is imported on first use, so that `classwise --help` and small commands start
without loading every submodule."""

from importlib import import_module

__version__ = "0.1.0"

_API = {
    "AttackSpec": "attacks", "attack": "attacks", "TrainConfig": "config", "ClassData": "data",
    "load_dataset": "data", "ClasswiseError": "errors", "EvalResult": "evaluation", "evaluate": "evaluation",
    "disparity": "metrics", "per_class_table": "metrics", "create_model": "models", "load_weights": "models",
    "StudyConfig": "study", "run_study": "study", "train": "training",
    "AutoAttackSpec": "attacks", "VictimSpec": "attacks", "IntoClassSpec": "attacks", "eps_curve": "evaluation",
    "curve_table": "evaluation", "half_accuracy_eps": "evaluation", "victim_table": "evaluation",
    "victim_summary": "evaluation", "into_table": "evaluation", "sanity_checks": "evaluation",
    "SanityReport": "evaluation", "robustbench_json": "evaluation", "audit": "auditing",
    "AuditResult": "auditing",
    "build_custom_model": "models.custom", "wrap_normalization": "models.custom",
    "load_custom_weights": "models.custom",
    "progress_hook": "progress", "ProgressEvent": "progress",
    "StudyResult": "result", "PerClassResult": "result", "load_study_result": "result",
}
__all__ = [*_API, "__version__"]


def __getattr__(name):
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'classwise' has no attribute {name!r}")
