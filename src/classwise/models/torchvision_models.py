"""Any torchvision classification architecture as `tv:<name>` (weights=None; load a weights
file with `load_weights`), with ImageNet normalization inside, for auditing ImageNet models."""

from __future__ import annotations

from torch import nn

from ..errors import ClasswiseError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREFIX = "tv:"


def torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def build_torchvision(name: str, num_classes: int = 1000) -> nn.Module:
    if name not in torchvision_names():
        raise ClasswiseError(f"torchvision has no classification model '{name}'; "
                             f"choose one of: {', '.join(torchvision_names())}")
    import torchvision

    kwargs = {"weights": None, "num_classes": num_classes}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)  # logits only, never aux outputs
    return torchvision.models.get_model(name, **kwargs)


def published_count(name: str) -> int:
    """torchvision's own record of the ImageNet model's parameter count."""
    import torchvision

    return int(torchvision.models.get_model_weights(name).DEFAULT.meta["num_params"])
