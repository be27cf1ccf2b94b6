"""One pass over a data set: per-class clean and adversarial accuracy, per-sample records."""

from .evaluate import EvalResult, evaluate

__all__ = ["EvalResult", "evaluate"]
