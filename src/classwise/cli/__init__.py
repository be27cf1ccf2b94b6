"""`classwise` command line. Each verb is one module of this package with `ORDER`,
`add_parser(sub)` and `run(args)`; a new verb is a new file, found here by discovery."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .. import progress
from ..errors import ClasswiseError, settings_message
from .common import OneLineParser


def _verbs() -> list:
    mods = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    return sorted((m for m in mods if hasattr(m, "add_parser")), key=lambda m: m.ORDER)


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The parser; the verb named in `argv` (default sys.argv) gets its expensive options too."""
    from . import objective_options

    objective_options.ACTIVE[:] = [list(sys.argv[1:] if argv is None else argv)]
    parser = OneLineParser(prog="classwise", description="Train and audit image classifiers class by class.")
    sub = parser.add_subparsers(dest="command", required=True)
    for verb in _verbs():
        verb.add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser(argv).parse_args(argv)
    before = progress.QUIET
    progress.QUIET = getattr(args, "quiet", False)  # no progress (`study --quiet`: nothing but errors)
    try:
        return args.func(args)
    except ClasswiseError as exc:
        print(f"classwise: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = ("rerun the same command to continue (finished runs are skipped)" if args.command == "sweep"
                 else "rerun with --resume to continue from the last checkpoint")
        print(f"classwise: interrupted; {again}", file=sys.stderr)
        return 130
    except ValueError as exc:  # pydantic validation of option values
        if type(exc).__name__ != "ValidationError":
            raise
        print(f"classwise: error: {settings_message(exc)}", file=sys.stderr)
        return 2
    finally:
        progress.QUIET = before
