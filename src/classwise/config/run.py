"""A run: training (TrainConfig) plus the final per-class evaluation on the test set."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from . import TrainConfig


class RunConfig(TrainConfig):
    """One run of a grid: training plus the final per-class evaluation on the test set."""

    test_steps: int = Field(default=20, ge=1, description="PGD steps of the final evaluation")
    test_restarts: int = Field(default=1, ge=1)
    test_limit: int | None = Field(default=None, ge=10, description="final evaluation on a stratified test "
                                      "subset of this size")
    # torch's intra-op threads: float reductions, hence results, depend on it, so a sweep records
    # the count when it registers the run and every attempt uses it (--jobs 1 and 2 agree)
    threads: int | None = Field(default=None, ge=1, description="default: torch's count where the run is set up")
    # AutoAttack per class in the final evaluation, next to PGD: true (the standard version), a
    # version name (standard, plus, rand), or a table of AutoAttackSpec fields for a custom or
    # reduced budget, e.g. {version = "custom", attacks = ["apgd-ce", "apgd-t"], iterations = 20}
    test_autoattack: bool | str | dict[str, Any] = Field(default=False, description="AutoAttack in the final "
                                                         "evaluation: true, a version, or AutoAttackSpec fields")
    # natural corruptions per class in the final evaluation: names or ["all"], at these severities
    corruptions: list[str] = Field(default_factory=list, description="corruptions in the final evaluation, or all")
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    frost_dir: str | None = Field(default=None, description="the frost photographs; without them frost is skipped")

    @field_validator("test_autoattack")
    @classmethod
    def _autoattack(cls, value):
        autoattack_spec(value, eps=0.0, norm="linf")  # refuse a bad version or field before any run starts
        return value

    @field_validator("corruptions")
    @classmethod
    def _corruptions(cls, value):
        from ..corruptions import ORDER  # imports torch: only when a run asks for corruptions

        if value:
            value = list(ORDER) if value == ["all"] else value
            unknown = [v for v in value if v not in ORDER]
            if unknown:
                raise ValueError(f"unknown corruption(s) {', '.join(unknown)}; choose all or from: {', '.join(ORDER)}")
        return value

    @field_validator("severities")
    @classmethod
    def _severities(cls, value):
        if not value or any(s not in range(1, 6) for s in value):
            raise ValueError(f"severities run from 1 to 5, got {value}")
        return sorted(set(value))

    def test_autoattack_spec(self):
        """The final evaluation's AutoAttack (at the run's eps and norm), or None."""
        return autoattack_spec(self.test_autoattack, eps=self.eps, norm=self.norm)


def autoattack_spec(value, *, eps, norm):
    from ..attacks.autoattack import AutoAttackSpec  # imports torch: only when a run asks for it

    if value is False:
        return None
    fields = {} if value is True else {"version": value} if isinstance(value, str) else dict(value)
    for key in ("eps", "norm"):
        if key in fields:
            raise ValueError(f"test_autoattack takes the run's {key}; drop '{key}' from it")
    return AutoAttackSpec(eps=eps, norm=norm, **fields)
