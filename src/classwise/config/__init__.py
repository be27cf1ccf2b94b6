"""Run configuration: one validated value that says everything about a training run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_serializer, model_validator

from ..settings import Settings
from .methods import method_settings

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "multistep", "cyclic", "cosine")
LATER_DEFAULTS = {"precision": "fp32", "compile": False}  # fields recorded only when not at these


class TrainConfig(Settings):  # Settings: inf/NaN refused, errors are ClasswiseErrors
    model_config = ConfigDict(extra="forbid")

    dataset: str = "fashion-mnist"
    arch: str = Field(default="mnist-cnn", description="architecture (see `classwise models`); default on the "
                      "command line: the data set's (see `classwise datasets`)")
    method: str = "standard"  # a training method: `classwise methods`, config.methods.METHODS
    method_params: dict[str, Any] = Field(default_factory=dict, description="the objective's own parameters")
    init_weights: str | None = Field(default=None, description="start from these weights (a model.pt or "
                                     "checkpoint), e.g. FRL fine-tunes a robust model")
    # threat model, for adversarial training and for every robust evaluation of the run
    eps: float | None = Field(default=None, ge=0, description="default: 0.1 grey, 8/255 colour")
    norm: Literal["linf", "l2"] = "linf"
    attack_steps: int = Field(default=10, ge=1, description="PGD steps of the training attack")
    attack_alpha: float | None = Field(default=None, gt=0,
                                       description="default: the method's released code's step as a share of eps "
                                                   "(eps/4 PGD-AT, 0.2258 eps TRADES, 1.25 eps FGSM-RS)")
    # BatchNorm while crafting training attacks: "eval" (running statistics; BN is then folded
    # into the convs, see attacks/fold.py) or "train" (batch statistics, which the attack's passes
    # also update); default: the method's released code's (eval for all but CFA's PGD-AT base)
    attack_bn: Literal["eval", "train"] | None = Field(default=None, description="BatchNorm mode while "
                                                        "crafting training inputs (default: the method's)")
    # optimisation
    epochs: int = Field(default=10, ge=1, description="training epochs")
    batch_size: int = Field(default=128, ge=2, description="training batch size")
    optimizer: Literal[OPTIMIZERS] = Field(default="sgd", description="the optimiser")
    lr: float = Field(default=0.1, gt=0, description="the peak learning rate")
    momentum: float = Field(default=0.9, ge=0, description="SGD momentum")
    nesterov: bool = Field(default=False, description="Nesterov momentum")
    weight_decay: float = Field(default=5e-4, ge=0, description="L2 weight decay")
    schedule: Literal[SCHEDULES] = Field(default="cyclic", description="learning-rate schedule")
    step_size: int | None = Field(default=None, ge=1, description="step: decay every N epochs")
    milestones: list[int] | None = Field(default=None, description="multistep: decay at these epochs, e.g. 100,150")
    gamma: float | list[float] = Field(default=0.1, description="step/multistep decay factor; multistep: one "
                                       "per milestone (e.g. FAT's 0.1, 0.1, 0.5)")
    warmup_epochs: float = Field(default=0, ge=0, description="linear learning-rate warm-up from 0 over these "
                                 "epochs (LDAM-DRW's 5)")
    # data
    crop_padding: int | None = Field(default=None, ge=0, description="default: 4 colour, 0 grey")
    hflip: bool | None = Field(default=None, description="default: if the data set allows it")
    val_size: float | int = 0.1
    train_limit: int | None = Field(default=None, ge=10, description="train on a stratified subset of this size")
    imbalance: float | None = Field(default=None, ge=1, description="long-tailed training set: the largest class's "
                                    "count over the smallest (Cao et al.'s profile); default: the data set's own "
                                    "(100 for cifar10-lt, cifar100-lt), else as it is")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="0 to 2^32 - 1")
    # per-epoch evaluation on a fixed stratified validation subset
    eval_subset: int = Field(default=1000, ge=10, description="size of the fixed validation subset evaluated "
                             "after each epoch")
    eval_steps: int = Field(default=10, ge=1, description="PGD steps of the per-epoch evaluation")
    # stop adversarial training when validation robustness collapses (catastrophic
    # overfitting, Wong et al. 2020) and keep the best epoch's weights
    collapse_drop: float | None = Field(default=0.2, gt=0, le=1)
    channels_last: bool = True
    # arithmetic of the training step and of the attacks' forward passes (autocast; fp16 with a
    # gradient scaler), and torch.compile of the model those steps run (see classwise/precision.py)
    precision: Literal["fp32", "bf16", "fp16"] = Field(default="fp32", description="fp32, or autocast to bf16 / "
                                                       "fp16 for the training step and attack forward passes")
    compile: bool = Field(default=False, description="torch.compile the training step and the attack step")

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # the fields added later are left out of the recorded config at their defaults, so the
        # checkpoints and the run ids of runs made before they existed stay valid (fp32 and eager
        # are what every such run was); any other value is recorded
        out = handler(self)
        if isinstance(out, dict):
            for key, default in LATER_DEFAULTS.items():
                if key in out and out[key] == default:
                    del out[key]
        return out

    @model_validator(mode="after")
    def _check(self):
        self.method_params = method_settings(self.method, self.method_params).model_dump()
        gammas = self.gamma if isinstance(self.gamma, list) else [self.gamma]
        if any(not g > 0 for g in gammas):
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if isinstance(self.gamma, list) and (self.schedule != "multistep"
                                             or len(self.gamma) != len(self.milestones or [])):
            raise ValueError("a list of gammas needs --schedule multistep and one gamma per milestone")
        if self.nesterov and self.optimizer != "sgd":
            raise ValueError("nesterov applies to the sgd optimizer only")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        if self.norm == "linf" and self.eps is not None and self.eps > 1:
            raise ValueError(f"an linf eps above 1 is more than the whole [0, 1] pixel range, got {self.eps}; "
                             "give it in [0, 1], e.g. 8/255")
        return self

    def resolved(self, grey: bool, hflip_ok: bool = False, imbalance: float | None = None) -> TrainConfig:
        """The config with every default that depends on the data or the method filled in (eps,
        augmentation, the attack's step and BatchNorm mode): decided here once, read everywhere."""
        method = method_settings(self.method, self.method_params)
        eps = self.eps if self.eps is not None else (0.1 if grey else 8 / 255)
        return self.model_copy(update={
            "eps": eps,
            "attack_alpha": self.attack_alpha or method.step_share() * eps or None,
            "attack_bn": self.attack_bn or method.attack_bn(),
            "crop_padding": self.crop_padding if self.crop_padding is not None else (0 if grey else 4),
            "hflip": self.hflip if self.hflip is not None else hflip_ok,
            "imbalance": self.imbalance if self.imbalance is not None else imbalance,
        })
