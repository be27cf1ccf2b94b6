"""Natural corruptions as batched tensor ops: the 15 CIFAR-10-C corruptions and the 4 extras of
Hendrycks & Dietterich (2019) at severities 1-5 with their CIFAR-10-C parameters
(make_cifar_c.py), for (N, C, H, W) images in [0, 1], 1 or 3 channels, from 28 px; random
draws come from the `generator` passed in. Grey images go through colour formulas as R = G = B
and come back as their luma."""

from . import blur, digital, noise, weather  # noqa: F401  (each registers its corruptions)
from .registry import CORRUPTIONS, Corruption
from .spec import CorruptionPass, CorruptionSpec, corruption_specs
from .weather import FROST_NEEDS

# the order of the published benchmark: the 15 of CIFAR-10-C, then the 4 held-out extras
ORDER = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
         "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
         "speckle_noise", "gaussian_blur", "spatter", "saturate"]
assert sorted(ORDER) == sorted(CORRUPTIONS)


def unavailable(name: str, frost_dir=None) -> str | None:
    """Why `name` cannot run here (None if it can)."""
    if name == "frost":
        frost_dir = weather.resolve_frost_dir(frost_dir)
        if not frost_dir:
            return f"frost needs {FROST_NEEDS}"
        try:
            weather.frost_textures(frost_dir)
        except Exception as exc:  # noqa: BLE001  (the reason is the message)
            return str(exc)
    return None


def corrupt(x, name: str, severity: int, generator=None, **kw):
    """`CORRUPTIONS[name](x, severity, generator)`."""
    return CORRUPTIONS[name](x, severity, generator, **kw)


__all__ = ["CORRUPTIONS", "ORDER", "Corruption", "CorruptionPass", "CorruptionSpec", "corrupt", "corruption_specs",
           "unavailable"]
