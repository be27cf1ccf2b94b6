"""Models: a registry of architectures that all take [0, 1] images."""

from . import airbench, densenet, inception, resnet, small, vgg, wide_resnet  # noqa: F401  (each registers its architectures)
from .checkpoint import extract_state_dict, load_weights, parse_checkpoint, read_weights_file
from .registry import MODELS, Normalized, check_arch, count_parameters, create_model, register_model

__all__ = ["MODELS", "Normalized", "check_arch", "count_parameters", "create_model", "extract_state_dict",
           "load_weights", "parse_checkpoint", "read_weights_file", "register_model"]
