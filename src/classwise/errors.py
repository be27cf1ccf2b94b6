"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class ClasswiseError(Exception):
    """Something the user can fix (bad input, missing data, refused file)."""

    def __str__(self) -> str:
        # the CLI's promise is one line per error: messages that quote a file or an exception
        # may carry newlines of their own
        return " ".join(super().__str__().split())


class DatasetNotFoundError(ClasswiseError):
    def __init__(self, name: str, searched: list, how_to_get: str):
        self.name = name
        self.searched = [str(p) for p in searched]
        paths = ", ".join(self.searched) if self.searched else "(none)"
        super().__init__(
            f"data set '{name}' not found; searched: {paths}. {how_to_get}"
        )


class CorruptDataError(ClasswiseError):
    pass


class InvalidSettingsError(ClasswiseError, ValueError):
    """A configuration value out of range or of the wrong type (from the pydantic models);
    `errors()` lists them as pydantic does."""

    def __init__(self, message: str, errors: list | None = None):
        super().__init__(message)
        self._errors = errors or []

    def errors(self) -> list:
        return self._errors


class WeightsError(ClasswiseError):
    """A weights file that cannot be read or does not fit the model."""


def flat_errors(exc) -> list[dict]:
    """pydantic's error list with the errors of nested settings (raised by their own
    `Settings.__init__`, so wrapped as value errors) spliced in under their full location."""
    out = []
    for e in exc.errors():
        inner = (e.get("ctx") or {}).get("error")
        if e.get("type") == "value_error" and isinstance(inner, InvalidSettingsError) and inner.errors():
            out += [{**i, "loc": (*e["loc"], *i["loc"])} for i in flat_errors(inner)]
        else:
            out.append(e)
    return out


def settings_message(exc, where: str = "invalid settings") -> str:
    """One line from a pydantic ValidationError: every field, what was wrong, what was given."""
    parts = []
    for e in flat_errors(exc):
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        given = e.get("input")
        # a validator's own message (value_error) already says what it got
        shown = "" if isinstance(given, dict) or given is None or e["type"] == "value_error" else f" (got {given!r})"
        parts.append(f"{loc}: {msg}{shown}" if loc else msg)
    return f"{where}: " + "; ".join(parts)


def validated(model, data, where: str, what: str = ""):
    """`data` (a parsed JSON file) as the pydantic `model`, or a `CorruptDataError` naming `where`
    and the first fault, then `what` the file should have been."""
    from pydantic import ValidationError

    tail = f"; not {what}" if what else ""
    if not isinstance(data, dict):
        raise CorruptDataError(f"{where}: expected a JSON object, got a {type(data).__name__}{tail}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CorruptDataError(f"{where}: {first_error(exc)}{tail}") from None


def first_error(exc) -> str:
    """pydantic's first error as `where: what (got ...)`, short: a stored file's fields can be
    long lists, and one clear fault is what the user needs."""
    e = exc.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".") or "the record"
    given = e.get("input")
    shown = "" if isinstance(given, dict | list) else f" (got {given!r:.40})"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {e['msg']}{shown}{more}"
