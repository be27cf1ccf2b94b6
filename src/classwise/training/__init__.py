"""Training: one loop; methods are registered objectives (train/objectives/, one file each)."""

from .objectives import OBJECTIVES, Objective, Step, make_objective, register_objective
from .optim import lr_factor, make_optimizer, make_scheduler
from .trainer import (
    BEST_WORST,
    CHECKPOINT,
    FINAL,
    METRICS,
    TrainResult,
    build_model,
    model_meta,
    objective_for,
    train,
    train_epoch,
)

__all__ = ["BEST_WORST", "CHECKPOINT", "FINAL", "METRICS", "OBJECTIVES", "Objective", "Step", "TrainResult",
           "build_model", "lr_factor", "make_objective", "make_optimizer", "make_scheduler", "model_meta",
           "objective_for", "register_objective", "train", "train_epoch"]
