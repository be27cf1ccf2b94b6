"""`classwise study` config: N arms (training methods) with the same architecture, budget
and seeds, i.e. one run config, the methods to compare, and the seeds to repeat them over."""

from __future__ import annotations

from contextlib import suppress

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ClasswiseError, settings_message
from .methods import METHODS
from .run import RunConfig

# the plain adversarial arms, in the order the reference arm is looked for
REFERENCE_METHODS = ("fgsm-rs", "pgd")
# how the study reports, not what it trains: a --resume may change them
REPORT_FIELDS = frozenset({"reference", "resamples", "confidence", "sanity", "figures"})
# which arms it holds: a --resume may add arms (each reused arm's own run config is checked
# against its checkpoint), never drop one (its folder would stay in the study's analyses)
ARM_FIELDS = frozenset({"methods", "method_params", "init_from"})


def method_names() -> list[str]:
    """Training methods: the built-in ones and any registered since (`register_objective`)."""
    return list(METHODS)


class StudyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: RunConfig = Field(default_factory=RunConfig)
    methods: list[str] = Field(default_factory=lambda: ["standard", "fgsm-rs"], min_length=1,
                               description="one arm per training method; the arm is named after it")
    method_params: dict[str, dict] = Field(default_factory=dict, description="per-method parameters")
    reference: str | None = Field(default=None, description="the plain adversarial arm others are compared "
                                                            "against; default fgsm-rs or pgd when present")
    init_from: dict[str, str] = Field(default_factory=dict, description="arm -> the earlier arm whose final "
                                      "weights it starts from, at the same seed (FRL fine-tunes a robust model)")
    seeds: list[int] | None = Field(default=None, min_length=1, description="default: [run.seed]")
    resamples: int = Field(default=1000, ge=100, description="bootstrap resamples behind every interval")
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    sanity: bool = Field(default=True, description="run the sanity checks of every robust evaluation")
    figures: bool = Field(default=True, description="draw the report's figures (its tables, CSVs and answers "
                                                    "are written either way)")
    preset: str = "custom"

    @model_validator(mode="after")
    def _check(self):
        known = method_names()
        unknown = [m for m in self.methods if m not in known]
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from: {', '.join(known)}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods repeat an arm: {', '.join(self.methods)}")
        stray = [m for m in self.method_params if m not in self.methods]
        if stray:
            raise ValueError(f"method_params for method(s) not in the study: {', '.join(stray)}")
        if self.reference is not None and self.reference not in self.methods:
            raise ValueError(f"reference arm '{self.reference}' is not one of the methods")
        for arm, source in self.init_from.items():
            missing = [a for a in (arm, source) if a not in self.methods]
            if missing:
                raise ValueError(f"init_from {arm}={source}: {', '.join(missing)} not one of the methods")
            if self.methods.index(source) >= self.methods.index(arm):
                raise ValueError(f"init_from {arm}={source}: {source} must come before {arm} in the methods "
                                 "(it trains first)")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds repeat a value")
        bad = [s for s in self.seeds or [] if not 0 <= s <= 2**32 - 1]
        if bad:
            raise ValueError(f"seeds run from 0 to {2**32 - 1} (2^32 - 1), got {bad[0]}")
        return self

    @property
    def arms(self) -> list[str]:
        return list(self.methods)

    @property
    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds else [self.run.seed]

    @property
    def reference_arm(self) -> str | None:
        """The arm each arm's worst class and cost to the average are measured against."""
        if self.reference:
            return self.reference
        return next((m for m in REFERENCE_METHODS if m in self.methods), None)


# Presets set the budget; data set and architecture come from the command line.
# `quick` is sized so that the default Fashion-MNIST study takes under ten minutes on two CPU
# cores (measured: 6.5 min; standard 91.3% clean, FGSM-RS 70.7% PGD-20 at eps 0.1 after 3 epochs).
PRESETS: dict[str, dict] = {
    "smoke": {"epochs": 4, "train_limit": 2000, "eval_subset": 200, "eval_steps": 5, "lr": 0.05,
              "weight_decay": 0.0, "test_steps": 10, "test_limit": 1000},
    "quick": {"epochs": 3, "lr": 0.05, "weight_decay": 0.0, "eval_subset": 1000, "eval_steps": 10,
              "test_steps": 20},
}

# A preset resolved for a data set: what replaces or adds to PRESETS[preset] there, the
# architecture included (an --arch given still wins). `quick` on the 32-px colour sets is sized
# for 20 minutes on two CPU cores, standard and FGSM-RS arms together (measured on CIFAR-10: 9-10
# min on two free cores), after airbench's lessons (a small wide net, a one-cycle schedule,
# Nesterov SGD, data as tensors with batched augmentation), on the whole training and test sets:
# the arithmetic is in docs/guide/presets.md. (Label smoothing, airbench's other lesson, needs a
# trainer option that does not exist yet.)
_COLOUR_SETS = ("cifar10", "svhn", "cifar100", "cifar10-lt", "cifar100-lt")
_COLOUR_QUICK = {"arch": "airbench-half", "epochs": 3, "batch_size": 128, "lr": 0.2, "momentum": 0.9,
                 "nesterov": True, "weight_decay": 5e-4, "schedule": "cyclic", "train_limit": None,
                 "eval_subset": 500, "eval_steps": 5, "test_steps": 20, "test_limit": None}
DATASET_PRESETS: dict[str, dict[str, dict]] = {
    # SVHN's digits are learnt in fewer epochs
    "quick": {name: {**_COLOUR_QUICK, "epochs": 2} if name == "svhn" else _COLOUR_QUICK for name in _COLOUR_SETS},
    "smoke": {name: {"arch": "airbench-half", "batch_size": 128, "test_limit": 500} for name in _COLOUR_SETS},
}


def preset_fields(preset: str, dataset: str | None = None) -> dict:
    """The run fields `preset` sets on `dataset` (default: the run's default data set): the
    preset's own, then the data set's (DATASET_PRESETS), the architecture last: the data set's
    preset's, else the data set's default (`classwise datasets`)."""
    if preset not in PRESETS:
        raise ClasswiseError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    dataset = dataset or RunConfig.model_fields["dataset"].default
    fields = {**PRESETS[preset], **DATASET_PRESETS.get(preset, {}).get(dataset, {})}
    if "arch" not in fields:
        from ..data import get_spec

        # an unknown data set is refused, with its choices, where the run is checked
        with suppress(ClasswiseError):
            fields["arch"] = get_spec(dataset).default_arch
    return fields


def preset_config(preset: str, *, methods: list[str] | None = None, method_params: dict | None = None,
                  seeds: list[int] | None = None, reference: str | None = None, init_from: dict | None = None,
                  **overrides) -> StudyConfig:
    """The study `preset` sets on the data set of `overrides` (see `preset_fields`); every
    override given (not None) wins over the preset."""
    given = {k: v for k, v in overrides.items() if v is not None}
    fields = {**preset_fields(preset, given.get("dataset")), **given}
    study = {k: v for k, v in {"methods": methods, "method_params": method_params, "seeds": seeds,
                                "reference": reference, "init_from": init_from}.items() if v is not None}
    try:
        return StudyConfig(run=RunConfig(**fields), preset=preset, **study)
    except ValidationError as exc:
        raise ClasswiseError(settings_message(exc, "study")) from exc

