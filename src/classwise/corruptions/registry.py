"""The corruption registry: name -> `Corruption`, filled where each corruption is defined."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch

from . import ops

CORRUPTIONS: dict[str, Corruption] = {}

# Values corrupted at once on the CPU, by default (85 CIFAR images): the mostly elementwise
# corruptions ran fastest with their temporaries in cache, 1.2-1.9x faster than in chunks of 2^21
# values on the 4,096 images an evaluation hands over (brightness 1.9x, saturate 1.8x, pixelate
# 1.3x); in one piece 1.5-6x slower still. Those with costs per call (codec calls, per-call
# kernels, loops over offsets or passes) register a larger `chunk`: 2^21 or 2^23 values.
CPU_CHUNK = 1 << 18


@dataclass(frozen=True)
class Corruption:
    name: str  # as the CIFAR-10-C file is named (`gaussian_noise.npy`)
    family: str  # noise, blur, weather, digital
    # (x (N, C, H, W) in [0, 1], severity 1..5, generator) -> same shape; with `draw`, (x, severity,
    # drawn) -> same shape
    fn: Callable[..., torch.Tensor]
    params: tuple  # the CIFAR-10-C table, one entry per severity
    extra: bool = False  # one of the four held-out extras (speckle, gaussian blur, spatter, saturate)
    needs: str | None = None  # files it cannot work without
    # values at a time on the CPU; None: the batch whole (the noises make one fresh tensor and work
    # on it in place, so chunks would only add a copy: 15-35% slower)
    chunk: int | None = CPU_CHUNK
    # (x, generator) -> what every severity shares, where its random numbers do not depend on the
    # severity: the draws and what follows from them and x alone; `each_severity` makes it once
    draw: Callable | None = None

    def __call__(self, x: torch.Tensor, severity: int, generator: torch.Generator | None = None, *,
                 quantize: bool = False, **kw) -> torch.Tensor:
        """The corrupted images, in x's memory format; on the CPU in chunks of `chunk` values,
        drawn one after the other from `generator`. `quantize`: as 8-bit levels, the way the
        published files store them."""
        _check(self.name, [severity])
        if self.draw is not None:
            xc = x.contiguous()
            return self._finished(self.fn(xc, severity, self.draw(xc, generator), **kw), x, quantize)
        cpu_chunks = self.chunk is not None and x.device.type == "cpu"
        step = max(1, self.chunk * len(x) // max(1, x.numel()) if cpu_chunks else len(x))
        if len(x) <= step:
            return self._finished(self.fn(x.contiguous(), severity, generator, **kw), x, quantize)
        out = torch.empty_like(x)
        for i in range(0, len(x), step):
            part = self.fn(x[i:i + step].contiguous(), severity, generator, **kw)
            out[i:i + step] = ops.quantize(part) if quantize else part
        return out

    def each_severity(self, x: torch.Tensor, severities: Iterable[int], generator: torch.Generator | None = None,
                      *, quantize: bool = False, **kw) -> Iterator[tuple[int, torch.Tensor]]:
        """(severity, corrupted images) for each severity in turn, all made from the same random
        numbers (common random numbers: an image's severities differ by the severity alone), so
        severity s is the image `self(x, s, generator)` gives from the generator's state on entry.
        Where the draws do not depend on the severity (`draw`) they are made once, not once a
        severity: the noises cost mostly their draws. `generator` is left past all their draws."""
        severities = list(severities)
        _check(self.name, severities)
        if self.draw is not None:
            xc = x.contiguous()
            drawn = self.draw(xc, generator)
            for s in severities:
                yield s, self._finished(self.fn(xc, s, drawn, **kw), x, quantize)
            return
        state = generator.get_state() if generator is not None else None
        for s in severities:
            if state is not None:
                generator.set_state(state)
            yield s, self(x, s, generator, quantize=quantize, **kw)

    @staticmethod
    def _finished(out: torch.Tensor, x: torch.Tensor, quantize: bool) -> torch.Tensor:
        out = ops.quantize(out) if quantize else out
        return out.contiguous(memory_format=_memory_format(x))


def _check(name: str, severities: list[int]) -> None:
    bad = [s for s in severities if s not in range(1, 6)]
    if bad:
        raise ValueError(f"{name}: severity must be 1..5, got {bad[0]}")


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    cl = x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if cl else torch.contiguous_format


def register_corruption(family: str, params, *, extra: bool = False, needs: str | None = None,
                        chunk: int | None = CPU_CHUNK, draw: Callable | None = None):
    if draw is not None and chunk is not None:
        raise ValueError("a corruption with shared draws works on the batch whole (chunk=None)")

    def deco(fn):
        CORRUPTIONS[fn.__name__] = Corruption(fn.__name__, family, fn, tuple(params), extra, needs, chunk, draw)
        return fn
    return deco


def param(name: str, severity: int):
    return CORRUPTIONS[name].params[severity - 1]
