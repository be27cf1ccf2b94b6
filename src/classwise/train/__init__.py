"""Training: one loop; methods and schedules are small plug-ins."""

from .methods import METHODS, register_method
from .optim import lr_factor, make_optimizer, make_scheduler
from .trainer import CHECKPOINT, FINAL, METRICS, TrainResult, build_model, model_meta, train, train_epoch

__all__ = ["CHECKPOINT", "FINAL", "METHODS", "METRICS", "TrainResult", "build_model",
           "lr_factor", "make_optimizer", "make_scheduler", "model_meta", "register_method", "train",
           "train_epoch"]
