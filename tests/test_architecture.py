"""How the package's modules connect: data flows one way (config -> data -> model -> train ->
evaluate -> report), so no import goes back up and none goes round in a circle. The trainer's
per-epoch per-class trend is an evaluation, so training sits above evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

SRC = Path(__file__).resolve().parent.parent / "src" / "classwise"
# what a lower layer never imports (lazy imports inside functions count: grimp reads them too)
NEVER = {
    "config": ("training", "evaluation", "study", "analysis", "report", "cli", "zoo"),
    "data": ("training", "evaluation", "study", "analysis", "report", "cli", "zoo"),
    "models": ("training", "evaluation", "study", "analysis", "report", "cli", "zoo"),
    "attacks": ("training", "evaluation", "study", "analysis", "report", "cli", "zoo"),
    "evaluation": ("training", "study", "analysis", "report", "cli", "zoo"),
    "training": ("study", "analysis", "report", "cli", "zoo"),
    "analysis": ("study", "report", "cli", "zoo"),
    "report": ("study", "cli", "zoo"),
}


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("classwise", cache_dir=None)


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _arrows(graph) -> set[tuple[str, str]]:
    """(importer, imported) between the top-level modules and subpackages of classwise."""
    return {(_package(m), _package(i)) for m in graph.modules for i in graph.find_modules_directly_imported_by(m)
            if _package(m) != _package(i)}


def _cycles(arrows: set[tuple[str, str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan's algorithm)."""
    succ: dict[str, set[str]] = {}
    for a, b in arrows:
        succ.setdefault(a, set()).add(b)
        succ.setdefault(b, set())
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return groups


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert _cycles({("a", "b"), ("b", "c")}) == []


def test_no_import_circle_between_packages_or_modules(graph):
    assert _cycles(_arrows(graph)) == []
    modules = {(m, i) for m in graph.modules for i in graph.find_modules_directly_imported_by(m)}
    assert _cycles(modules) == []


@pytest.mark.parametrize("lower", sorted(NEVER))
def test_a_lower_layer_never_imports_a_higher_one(graph, lower):
    wrong = sorted(f"{a} -> {b}" for a, b in _arrows(graph)
                   if a == f"classwise.{lower}" and b.removeprefix("classwise.") in NEVER[lower])
    assert wrong == []


def test_modules_stay_small_and_the_study_loop_short():
    """No module over 400 lines but the compiled corruption kernels; the seed x arm loop <= 200."""
    sizes = {p.relative_to(SRC).as_posix(): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert sizes["study/runner.py"] <= 200
    big = {p: n for p, n in sizes.items() if n > 400 and not p.startswith("corruptions/kernels/")}
    assert big == {}


def test_no_package_shares_its_name_with_an_api_function():
    import classwise

    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py")}
    assert sorted(set(classwise._API) & (packages | modules)) == []
