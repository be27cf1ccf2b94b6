"""One pass over a data set: per-class clean and adversarial accuracy, per-sample records,
and the sanity checks that come with a robust evaluation."""

import sys
import types

from .evaluate import evaluate
from .result import EvalResult, load_eval
from .robustbench import robustbench_json
from .sanity import SanityReport, sanity_checks
from .views import curve_table, eps_curve, half_accuracy_eps, into_table, victim_summary, victim_table

__all__ = ["EvalResult", "SanityReport", "curve_table", "eps_curve", "evaluate", "half_accuracy_eps", "into_table",
           "load_eval", "robustbench_json", "sanity_checks", "victim_summary", "victim_table"]


class _CallablePackage(types.ModuleType):
    """`classwise.evaluation` names both this package and its `evaluate` function, and importing
    the package binds the package to that name on `classwise`; calling the package calls the
    function, so `classwise.evaluation(model, data, attacks=...)` works either way."""

    def __call__(self, *args, **kwargs):
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
