"""Command-line flags for the training objectives' parameters, made from the registry: a
field `f` of objective `o` is `--f` when it already starts with o's name (`--critical`,
`--critical-weight`), else `--o-f` (`--trades-beta`). Building them imports the registry (and
torch), so only the verb being run gets them (see `active_verb`)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ClasswiseError

ACTIVE: list = []  # the command line being parsed, set by `classwise.cli.build_parser`


def active_verb() -> str | None:
    """The verb of the command line being parsed (its first word that is not an option)."""
    args = ACTIVE[0] if ACTIVE else sys.argv[1:]
    return next((a for a in args if not a.startswith("-")), None)


def _flag(method: str, field: str) -> str:
    stem = method.replace("-", "_")
    name = field if field.startswith(stem) else f"{stem}_{field}"
    return "--" + name.replace("_", "-")


def _value(text: str):
    """JSON where it parses (numbers, true/false, lists), comma lists, else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [_value(v) for v in text.split(",")] if "," in text else text


def add_objective_options(p: argparse.ArgumentParser) -> None:
    from ..training.objectives import OBJECTIVES

    group = p.add_argument_group("method parameters (see `classwise methods`; defaults are the papers')")
    for method, cls in OBJECTIVES.items():
        for field, info in cls.Params.model_fields.items():
            group.add_argument(_flag(method, field), dest=f"objective:{method}:{field}", type=_value,
                               metavar="V", help=f"{method}: {info.description or field} (default {info.default!r})")


def objective_params(args, methods: list[str]) -> dict[str, dict]:
    """{method: {field: value}} from the flags given; a flag for a method not trained is an error."""
    out: dict[str, dict] = {}
    for dest, value in vars(args).items():
        if not dest.startswith("objective:") or value is None:
            continue
        _, method, field = dest.split(":")
        if method not in methods:
            raise ClasswiseError(f"{_flag(method, field)} is a parameter of method '{method}', which this command "
                                 f"does not train (methods: {', '.join(methods)})")
        out.setdefault(method, {})[field] = value
    return out
