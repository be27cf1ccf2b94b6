"""`Settings`: the base of every configuration value. A bad value raises `InvalidSettingsError`
(a `ClasswiseError`, so the CLI prints one line, and a `ValueError` with pydantic's `errors()`,
so code that handles validation errors keeps working), and inf / NaN are refused everywhere:
no budget, rate or radius is meaningful at infinity."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InvalidSettingsError, settings_message


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def __init__(self, /, **data):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidSettingsError(settings_message(exc, f"invalid {type(self).__name__}"),
                                       exc.errors()) from None


# recorded for the reader, not settings of a run: a resume may change them
NOT_SETTINGS = frozenset({"device"})


def _flat(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def config_differences(old: dict, new: dict, ignore: frozenset = frozenset()) -> list[str]:
    """`field (old -> new)` for every setting that differs, nested fields dotted; top-level
    fields in `ignore` (and NOT_SETTINGS) are not compared."""
    a, b = _flat(old), _flat(new)
    keys = [k for k in dict.fromkeys([*a, *b]) if k.split(".")[0] not in NOT_SETTINGS | ignore]
    return [f"{k} ({a.get(k, '(unset)')!r} -> {b.get(k, '(unset)')!r})" for k in keys if a.get(k) != b.get(k)]
