"""MkDocs hook: the parts of the docs made from the package itself, so they cannot drift.

- `<!-- classwise:methods -->` becomes the output of `classwise methods --markdown` (the same
  code path as the command), `<!-- classwise:differences -->` that of `classwise methods
  --differences --markdown`, and `<!-- classwise:methods-details -->` one section a method from
  the objectives registry (`classwise.training.objectives.OBJECTIVES`): its paper, its module
  docstring (the formula and what differs from the authors' code) and its parameters.
- `<!-- classwise:api -->` becomes one mkdocstrings block a public name, grouped by module,
  from `classwise._API` (the names `import classwise` exposes), so a name added to, moved in or
  removed from the public API shows up here without editing the page.
"""

from __future__ import annotations

import contextlib
import io
import sys


def _command(*args: str) -> str:
    from classwise.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["methods", *args])
    if code:
        raise RuntimeError(f"`classwise methods {' '.join(args)}` exited with {code}")
    return out.getvalue().strip()


def _methods_table() -> str:
    return _command("--markdown")


def _differences() -> str:
    return _command("--differences", "--markdown")


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _methods_details() -> str:
    from classwise.training.objectives import OBJECTIVES

    parts = []
    for name in sorted(OBJECTIVES):
        cls = OBJECTIVES[name]
        doc = (sys.modules[cls.__module__].__doc__ or cls.__doc__ or "").strip()
        kind = "adversarial training" if cls.adversarial else "standard training"
        parts.append(f"### `{name}`\n\n*{cls.paper}* — {kind}; `{cls.__module__}`\n\n{doc}\n")
        fields = cls.Params.model_fields
        if fields:
            rows = ["| parameter | default | what |", "| --- | --- | --- |"]
            rows += [f"| `{f}` | `{info.default!r}` | {_cell(info.description or '')} |" for f, info in fields.items()]
            parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


def _api() -> str:
    import classwise

    by_module: dict[str, list[str]] = {}
    for name, module in classwise._API.items():
        by_module.setdefault(module, []).append(name)
    parts = []
    for module in sorted(by_module):
        parts.append(f"## `classwise.{module}`\n")
        for name in sorted(by_module[module], key=str.lower):
            parts.append(f"::: classwise.{module}.{name}\n    options:\n      heading: \"classwise.{name}\"\n")
    return "\n".join(parts)


_MARKERS = {
    "<!-- classwise:methods -->": _methods_table,
    "<!-- classwise:methods-details -->": _methods_details,
    "<!-- classwise:differences -->": _differences,
    "<!-- classwise:api -->": _api,
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, make in _MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
