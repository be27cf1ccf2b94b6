"""The field's published robust models, class by class. RobustBench's model zoo by name
(`load_model`, through the `robustbench` package: `pip install 'classwise[robustbench]'`),
evaluated per class under the leaderboard's protocol as a resumable sweep (`run_zoo`), with the
per-class leaderboard, its check against the published numbers, the fair-robustness frontier and
the agreement of the weak classes across models.

    from classwise.zoo import load_model, run_zoo, ZooSettings
    model = load_model("Carmon2019Unlabeled", "cifar10", "linf", model_dir="models")
    report = run_zoo("Carmon2019Unlabeled,Wong2020Fast", ZooSettings(dataset="cifar10", threat="linf", n=1000),
                     leaderboard="robustbench/model_info")
    report.board        # one row a model: class mean, worst class and its interval, std, gap, clean and robust
"""

from .info import ModelInfo
from .names import load_model, names, weight_files
from .package import available
from .protocol import ZooSettings
from .report import ZooReport
from .study import run_zoo

__all__ = ["ModelInfo", "ZooReport", "ZooSettings", "available", "load_model", "names", "run_zoo", "weight_files"]
