"""The leaderboard's protocol as settings: which images, which eps, which attack. RobustBench
evaluates the first n test images in the data set's order (10,000 for CIFAR, 5,000 for ImageNet),
clean and with AutoAttack's standard version at the leaderboard's eps (8/255 L-inf and 0.5 L2 on
CIFAR, 4/255 L-inf on ImageNet); its corruption leaderboard averages accuracy over the 15
CIFAR-10-C corruptions at severities 1-5. `ZooSettings` holds that (or a deliberate departure
from it, e.g. a reduced AutoAttack budget for a quick look), and says how a run departs."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .names import DATASETS, threat_key

LEADERBOARD_EPS = {("cifar10", "linf"): 8 / 255, ("cifar100", "linf"): 8 / 255, ("imagenet", "linf"): 4 / 255,
                   ("cifar10", "l2"): 0.5, ("cifar100", "l2"): 0.5, ("imagenet", "l2"): 3.0}
LEADERBOARD_N = {"cifar10": 10_000, "cifar100": 10_000, "imagenet": 5_000}
# the 15 corruptions of CIFAR-10-C, the corruption leaderboard's set
CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
               "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
               "jpeg_compression")


class ZooSettings(BaseModel):
    """One evaluation protocol for every model of a zoo run (the model name is the sweep's axis)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal["cifar10", "cifar100", "imagenet"] = "cifar10"
    threat: str = "linf"
    n: int | None = Field(default=None, ge=1, description="first n test images; default: the leaderboard's")
    eps: float | None = Field(default=None, gt=0, description="default: the leaderboard's")
    # AutoAttack: the standard version unless a quick look asks for less
    version: Literal["standard", "plus", "rand", "custom"] = "standard"
    attacks: tuple[str, ...] | None = None
    iterations: int | None = Field(default=None, ge=1)
    restarts: int | None = Field(default=None, ge=1)
    queries: int | None = Field(default=None, ge=1)
    corruptions: tuple[str, ...] = CORRUPTIONS
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    seed: int = 0

    @field_validator("threat")
    @classmethod
    def _threat(cls, value):
        return threat_key(value)

    @property
    def images(self) -> int:
        return self.n if self.n is not None else LEADERBOARD_N[self.dataset]

    @property
    def radius(self) -> float | None:
        """The attack's eps (None on the corruption leaderboard)."""
        if self.threat == "corruptions":
            return None
        return self.eps if self.eps is not None else LEADERBOARD_EPS[(self.dataset, self.threat)]

    @property
    def robust_label(self) -> str:
        """The per-class column of the robust side: the AutoAttack run's key, or `corrupted`."""
        return "corrupted" if self.threat == "corruptions" else self.autoattack().label

    def autoattack(self):
        from ..attacks.autoattack import AutoAttackSpec

        return AutoAttackSpec(eps=self.radius, norm=self.threat, version=self.version,
                              attacks=self.attacks, iterations=self.iterations, restarts=self.restarts,
                              queries=self.queries)

    def identity(self) -> dict[str, Any]:
        """What a model's result depends on (with its name): the run id is a hash of it."""
        out = {"kind": "robustbench", "dataset": self.dataset, "threat": self.threat, "n": self.images,
               "seed": self.seed}
        if self.threat == "corruptions":
            out.update(corruptions=list(self.corruptions), severities=list(self.severities))
        else:
            out["autoattack"] = self.autoattack().model_dump()
        return out

    def departures(self) -> list[str]:
        """How these settings differ from the leaderboard's protocol (empty: the same)."""
        out = []
        if self.images != LEADERBOARD_N[self.dataset]:
            out.append(f"the first {self.images} test images, not the leaderboard's {LEADERBOARD_N[self.dataset]}")
        if self.threat == "corruptions":
            if tuple(self.corruptions) != CORRUPTIONS:
                out.append(f"{len(self.corruptions)} corruptions, not the 15 of CIFAR-10-C")
            if tuple(self.severities) != (1, 2, 3, 4, 5):
                out.append(f"severities {','.join(map(str, self.severities))}, not 1-5")
            return out
        if self.eps is not None and abs(self.eps - LEADERBOARD_EPS[(self.dataset, self.threat)]) > 1e-9:
            out.append(f"eps {self.eps:.4g}, not the leaderboard's {LEADERBOARD_EPS[(self.dataset, self.threat)]:.4g}")
        aa = self.autoattack()
        if aa.version != "standard":
            out.append(f"AutoAttack version '{aa.version}', not 'standard'")
        if aa.overridden:
            out.append("a reduced AutoAttack budget")
        return out


def zoo_run_id(name: str, settings: ZooSettings) -> str:
    """12 hex digits of the SHA-1 of the model's name and the settings' identity."""
    blob = json.dumps({"robustbench": name, **settings.identity()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def check_dataset_threat(dataset: str, threat: str) -> tuple[str, str]:
    if dataset not in DATASETS:
        from ..errors import ClasswiseError

        raise ClasswiseError(f"RobustBench has no data set '{dataset}'; choose from: {', '.join(DATASETS)}")
    return dataset, threat_key(threat)
