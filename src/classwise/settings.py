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
