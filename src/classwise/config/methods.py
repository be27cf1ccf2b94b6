"""Every training method's own settings, with its authors' released code's defaults (each field
with a description: the CLI flags and `classwise methods` come from them), and what the run
config resolves from them: the attack step and the BatchNorm mode the method's code crafts
with, and the output layer it trains. The methods' behaviour lives in train/objectives/, one
file a paper, registered under the same name (`METHODS` here, `OBJECTIVES` there)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ClasswiseError

# the attack step a method's released code trains with, as a share of eps: Madry et al.'s 2/255
# at 8/255, TRADES's 0.007 at 0.031 (and the papers that copied its script), Wong et al.'s 1.25 eps
# for one step from a random start
STEP = {"pgd": 1 / 4, "trades": 0.007 / 0.031, "fgsm-rs": 1.25}
Base = Literal["pgd", "trades", "fgsm-rs"]
Counts = Literal["auto", "data", "difficulty"]


class MethodParams(BaseModel):
    """A method's own settings; unknown keys are refused. The defaults below say how its code
    attacks while training when the run does not: `step_share` of eps a step, BatchNorm in
    `attack_bn` mode, and `head`, an output layer other than the architecture's."""

    model_config = ConfigDict(extra="forbid")

    def step_share(self) -> float:
        return STEP[getattr(self, "base", "pgd")]

    def attack_bn(self) -> Literal["eval", "train"]:
        """Every released code here crafts in eval mode (model.eval() before the attack) but CFA's PGD-AT."""
        return "eval"

    def head(self) -> dict | None:
        return None


class FgsmRsParams(MethodParams):
    def step_share(self) -> float:
        return STEP["fgsm-rs"]


class TradesParams(MethodParams):
    beta: float = Field(default=6.0, ge=0, description="weight of the KL term")

    def step_share(self) -> float:
        return STEP["trades"]


class AdversarialParams(MethodParams):
    base: Base = Field(default="pgd", description="adversarial training it modifies: pgd, trades or fgsm-rs")
    trades_beta: float = Field(default=6.0, ge=0, description="TRADES KL weight (base trades only)")


class WeightedParams(AdversarialParams):
    weights: list[float] | dict[str, float] | None = Field(
        default=None, description="fixed per-class weights: 1,1,2,... or Shirt=3,Coat=2 (default: from "
                                  "validation robust error, updated each epoch)")
    power: float = Field(default=1.0, ge=0, description="adaptive weights: w_k proportional to err_k^power")
    floor: float = Field(default=0.01, gt=0, le=1, description="adaptive weights: error floor, so no class "
                                                               "drops out of the loss")

    @field_validator("weights", mode="before")
    @classmethod
    def _named(cls, v):
        # the command line gives "Shirt=3,Coat=2" as a list of strings (or one string)
        items = [v] if isinstance(v, str) else v
        if isinstance(items, list) and items and all(isinstance(t, str) and "=" in t for t in items):
            try:
                return {k.strip(): float(w) for k, w in (t.split("=", 1) for t in items)}
            except ValueError as exc:
                raise ValueError(f"weights like Shirt=3,Coat=2: {exc}") from exc
        return v

    @field_validator("weights")
    @classmethod
    def _positive(cls, v):
        values = v.values() if isinstance(v, dict) else (v or [])
        if any(w < 0 for w in values):
            raise ValueError("weights must be >= 0")
        return v


class CriticalParams(AdversarialParams):
    critical: str | int | None = Field(default=None, description="the critical class, by name or index")
    critical_weight: float = Field(default=5.0, gt=0, description="its loss weight W (the others have 1)")


class ClassBalancedParams(AdversarialParams):
    beta: float = Field(default=0.9999, ge=0, lt=1, description="effective-number beta")
    counts: Counts = Field(default="auto", description="n_k: the training counts (data), the class difficulty "
                                                       "(difficulty), or data when they are long-tailed (auto)")
    floor: float = Field(default=0.1, gt=0, le=1, description="robust accuracy floor of the effective count "
                                                              "(the largest imbalance it expresses is 1/floor)")


class LDAMParams(AdversarialParams):
    max_margin: float = Field(default=0.5, gt=0, description="largest margin D_k (before the scale s)")
    scale: float = Field(default=30.0, gt=0, description="s: the logit scale the margins are in units of")
    cosine_head: bool = Field(default=True, description="a normalised-cosine last layer giving s cos theta (the "
                                                        "authors'); false keeps the architecture's linear layer")
    drw_at: float = Field(default=0.8, ge=0, le=1, description="deferred re-weighting from this fraction "
                                                                "of the epochs on (160/200)")
    drw_beta: float = Field(default=0.9999, ge=0, lt=1, description="class-balanced beta after the switch")
    counts: Counts = Field(default="auto", description="n_k: the training counts (data), the class difficulty "
                                                       "(difficulty), or data when they are long-tailed (auto)")
    floor: float = Field(default=0.1, gt=0, le=1, description="robust accuracy floor of the effective count "
                                                              "(the largest imbalance it expresses is 1/floor)")

    def head(self) -> dict | None:
        return {"kind": "cosine", "scale": self.scale} if self.cosine_head else None


class TargetedParams(MethodParams):
    target: str | int = Field(default="weakest", description='target class (name or index) or "weakest", '
                                                             "updated each epoch from validation")
    mix: float = Field(default=0.5, ge=0, le=1, description="fraction of each batch attacked toward the target")
    base: Literal["pgd", "fgsm-rs"] = Field(default="pgd", description="attack steps: pgd or fgsm-rs")


class CosineParams(AdversarialParams):
    gamma: float = Field(default=1.0, ge=0, description="weight of the mean inter-class cosine")
    center: bool = Field(default=True, description="centre the class-mean logits before the cosine")


class FrlParams(MethodParams):
    base: Literal["trades"] = Field(default="trades", description="FRL is built on TRADES's clean + boundary "
                                                                   "error split (the authors' code has only it)")
    mode: Literal["reweight", "remargin", "both"] = Field(
        default="both", description="reweight (FRL-RW), remargin (FRL-RM) or both (FRL-RWRM)")
    tau: float = Field(default=0.07, ge=0, description="tolerance of each class's clean and boundary error "
                                                       "over the average")
    rate_weight: float = Field(default=0.05, gt=0, description="multiplier step r1 of the reweighting "
                                                               "(boundary: 2 r1), halved every 40 epochs")
    rate_margin: float = Field(default=0.2, gt=0, description="multiplier step r2 of the remargining")
    lim: float = Field(default=0.5, gt=0, lt=1, description="bound on the sum of the reweighting multipliers "
                       "(below 1 keeps every class weight positive)")
    beta: float = Field(default=1.5, ge=0, description="TRADES KL weight (the authors' FRL default)")
    val_steps: int = Field(default=20, ge=1, description="PGD steps of the validation attack the multipliers "
                                                         "are updated from")

    def step_share(self) -> float:
        return STEP["pgd"]  # their max(eps m) / 4


class FatVarParams(MethodParams):
    base: Literal["pgd", "trades"] = Field(default="pgd", description="adversarial training it regularises")
    alpha: float = Field(default=0.1, ge=0, description="weight of the variance of per-class losses")
    beta: float = Field(default=6.0, ge=0, description="TRADES KL weight (base trades)")
    slots: int = Field(default=100, ge=2, description="length of the authors' loss buffer the variance runs over "
                                                      "(unfilled slots count as 0)")
    present_only: bool = Field(default=False, description="the variance over the classes present in the batch only")

    def step_share(self) -> float:
        return STEP["trades"]  # their attack_generator's 0.007 at 0.031, for both bases


class CfaParams(MethodParams):
    base: Literal["pgd", "trades"] = Field(default="trades", description="adversarial training it calibrates "
                                                                          "(AT or TRADES)")
    lambda1: float = Field(default=0.5, ge=0, description="CCM: eps_k = (lambda1 + t_k) eps")
    lambda2: float = Field(default=0.5, ge=0, description="CCR: KL weight from (lambda2 + t_k) beta")
    beta: float = Field(default=6.0, ge=0, description="TRADES KL weight")
    ccm: bool = Field(default=True, description="class-wise eps")
    ccr: bool = Field(default=True, description="class-wise TRADES beta (base trades)")
    fawa: bool = Field(default=True, description="keep the fairness-aware weight average as the final model")
    threshold: float = Field(default=0.24, ge=0, le=1, description="FAWA: worst-class validation robust "
                                                                   "accuracy an epoch needs to be averaged")
    decay: float = Field(default=0.88, ge=0, lt=1, description="FAWA: EMA decay over epochs")
    begin: int | None = Field(default=None, ge=0, description="epochs before calibrating (default: the "
                                                              "paper's 10/200 of the run, at least 1)")
    source: Literal["train", "val"] = Field(default="train", description="t_k from the training batches "
                                                                         "(the authors) or validation")

    def step_share(self) -> float:
        return STEP["pgd"]  # their fixed 2/255 at 8/255 for both bases

    def attack_bn(self) -> Literal["eval", "train"]:
        return "train" if self.base == "pgd" else "eval"  # their attack_pgd runs on the model train_epoch left


class WatParams(MethodParams):
    base: Literal["pgd", "trades"] = Field(default="trades", description="adversarial training it reweights")
    eta: float = Field(default=0.1, gt=0, description="Hedge learning rate")
    beta: float = Field(default=6.0, ge=0, description="TRADES KL weight (base trades)")

    def step_share(self) -> float:
        return STEP["trades"]  # their 0.007 at 0.031 for both the training and the validation attack


class DafaParams(MethodParams):
    base: Literal["pgd", "trades"] = Field(default="trades", description="adversarial training it reweights")
    lam: float = Field(default=1.0, ge=0, description="scale of the class weights (CIFAR-10 1.0, CIFAR-100 "
                                                      "and STL-10 1.5)")
    warmup: int | None = Field(default=None, ge=1, description="epochs before the weights are set (default: the "
                                                               "paper's 70/110 of the run, at least 1)")
    beta: float = Field(default=6.0, ge=0, description="TRADES KL weight (base trades)")

    def step_share(self) -> float:
        return STEP["trades"]  # their pgd_step_size 0.007 at 0.031, for both bases


METHODS: dict[str, type[MethodParams]] = {
    "standard": MethodParams, "pgd": MethodParams, "fgsm-rs": FgsmRsParams, "trades": TradesParams,
    "weighted": WeightedParams, "critical": CriticalParams, "class-balanced": ClassBalancedParams,
    "ldam-drw": LDAMParams, "targeted": TargetedParams, "cosine-reg": CosineParams, "frl": FrlParams,
    "fat-var": FatVarParams, "cfa": CfaParams, "wat": WatParams, "dafa": DafaParams,
}


def method_settings(name: str, params: dict | None = None) -> MethodParams:
    """The method's settings, validated, every default filled in."""
    if name not in METHODS:
        raise ClasswiseError(f"unknown method '{name}'; choose one of: {', '.join(METHODS)} (see `classwise methods`)")
    cls = METHODS[name]
    try:
        return cls(**(params or {}))
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ClasswiseError(f"method '{name}': {'; '.join(parts)} "
                             f"(its parameters: {', '.join(cls.model_fields) or 'none'})") from exc
