"""Studies: configs, presets and the runner."""

from ..config.study import PRESETS, StudyConfig, preset_config
from .runner import run_study

__all__ = ["PRESETS", "StudyConfig", "preset_config", "run_study"]
