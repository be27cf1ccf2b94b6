"""`CorruptionSpec`: one corruption at one severity as a value (configs, results), and
`CorruptionPass` to make the images an evaluation reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .registry import CORRUPTIONS


class CorruptionSpec(BaseModel):
    """`source`: `tensor` corrupts the images in memory (deterministic under the evaluation's
    seed); `files` reads the published images (CIFAR-10-C style .npy files in `files`), which
    are the test set in its order. `quantize` stores a corrupted image as 8 bits the way the
    published files were written (np.uint8 truncation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threat: Literal["corruption"] = "corruption"  # EvalResult.kind() reads this
    name: str
    severity: int = Field(ge=1, le=5)
    source: Literal["tensor", "files"] = "tensor"
    files: str | None = None
    frost_dir: str | None = None
    quantize: bool = True

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in CORRUPTIONS:
            raise ValueError(f"unknown corruption '{v}'; choose one of: {', '.join(CORRUPTIONS)}")
        return v

    @property
    def label(self) -> str:
        return f"{self.name}@{self.severity}"

    def describe(self) -> str:
        where = f"from {self.files}" if self.source == "files" else "corrupted in memory"
        return f"{self.label}: {self.name} at severity {self.severity} ({CORRUPTIONS[self.name].family}), {where}"


def corruption_specs(names, severities, *, frost_dir=None, files=None) -> list[CorruptionSpec]:
    """Every name at every severity, corruption by corruption. `files` (a folder of CIFAR-10-C
    style files) switches to the published images for the corruptions it holds."""
    from ..data.corrupted import CorruptedFiles
    from .weather import resolve_frost_dir

    held = set(CorruptedFiles(files).names()) if files else set()
    frost_dir = resolve_frost_dir(frost_dir)  # recorded in the spec: the result names its photographs
    return [CorruptionSpec(name=n, severity=s, frost_dir=str(frost_dir) if frost_dir and n == "frost" else None,
                           source="files" if n in held else "tensor", files=str(files) if n in held else None)
            for n in names for s in severities]


class CorruptionPass:
    """The corrupted images of each chunk an evaluation reads, for its corruption specs (label
    -> spec). The severities of one corruption are made together from one generator (seeded by
    the evaluation's seed, consumed in data order): `Corruption.each_severity`, common random
    numbers, its draws made once for all severities where they do not depend on it."""

    def __init__(self, specs: dict[str, CorruptionSpec], seed: int, device):
        self.groups: dict[CorruptionSpec, list[tuple[str, CorruptionSpec]]] = {}
        for label, spec in specs.items():  # the same spec but for its severity
            self.groups.setdefault(spec.model_copy(update={"severity": 1}), []).append((label, spec))
        self.generators = {key: torch.Generator(device=device).manual_seed(seed) for key in self.groups}

    def __call__(self, x: torch.Tensor, idx: np.ndarray) -> Iterator[tuple[str, torch.Tensor]]:
        """(label, corrupted images) for the chunk: `x` are the clean [0, 1] images of rows `idx`
        of the evaluated set."""
        x = x.contiguous(memory_format=torch.channels_last)
        for key, members in self.groups.items():
            if key.source == "files":
                from ..data.corrupted import CorruptedFiles

                for label, spec in members:
                    levels = CorruptedFiles(spec.files).images(spec.name, spec.severity, idx)
                    out = torch.from_numpy(levels).permute(0, 3, 1, 2).to(x.device, torch.float32) / 255
                    yield label, out.contiguous(memory_format=torch.channels_last)
                continue
            kw = {"frost_dir": key.frost_dir} if key.name == "frost" else {}
            images = CORRUPTIONS[key.name].each_severity(x, [spec.severity for _, spec in members],
                                                         self.generators[key], quantize=key.quantize, **kw)
            for (label, _), (_, out) in zip(members, images, strict=True):
                yield label, out
