"""A run config with its data-dependent defaults filled in, decided once before a run."""

from __future__ import annotations

from ..config import TrainConfig
from ..data import Splits, get_spec


def resolve(cfg: TrainConfig, splits: Splits | None = None) -> TrainConfig:
    """Data-set dependent defaults (eps, augmentation, imbalance) from the data when given, else
    from the registry's description of the data set."""
    spec = get_spec(cfg.dataset)
    grey = splits.train.shape[0] == 1 if splits is not None and splits.train is not None else spec.grey
    return cfg.resolved(grey=grey, hflip_ok=spec.hflip, imbalance=spec.imbalance)
