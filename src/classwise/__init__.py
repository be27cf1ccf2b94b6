"""classwise: train and audit image classifiers class by class."""

from .attacks import AttackSpec, attack
from .config import TrainConfig
from .data import ClassData, load_dataset
from .errors import ClasswiseError
from .evaluate import EvalResult, evaluate
from .metrics import disparity, per_class_table
from .models import create_model
from .study import StudyConfig, run_study
from .train import train

__version__ = "0.1.0"

__all__ = ["AttackSpec", "ClassData", "ClasswiseError", "EvalResult", "StudyConfig", "TrainConfig",
           "attack", "create_model", "disparity", "evaluate", "load_dataset", "per_class_table",
           "run_study", "train", "__version__"]
