"""Every ```python block of README.md and docs/**/*.md runs as written, so the examples cannot rot.

The blocks run one after another in one child process (the imports are paid once): each in a
fresh namespace, as `__main__`, in its own empty temporary folder, with torch on one thread. A
block that prints must print something. A block that cannot run here (a GPU, a download) is
marked on the line before its fence with `<!-- no-run: why -->` and is reported as skipped with
that reason; keep those rare. Identical blocks (the README repeats the Python API page's first
example) run once. The README also stays at most 300 lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NO_RUN = re.compile(r"<!--\s*no-run:\s*(.*?)\s*-->")
README_MAX_LINES = 300


@dataclass(frozen=True)
class Block:
    where: str  # path:line of the opening fence
    source: str
    no_run: str | None  # the reason given by a no-run marker


def doc_files() -> list[Path]:
    docs = ROOT / "docs"
    return [ROOT / "README.md", *(sorted(docs.rglob("*.md")) if docs.is_dir() else [])]


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, with the no-run reason marked before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        if re.fullmatch(r"```python\s*", lines[i]):
            start, body = i, []
            i += 1
            while i < len(lines) and not re.fullmatch(r"```\s*", lines[i]):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise AssertionError(f"{path.relative_to(ROOT)}:{start + 1}: a ```python block is never closed")
            before = next((line for line in reversed(lines[:start]) if line.strip()), "")
            marker = NO_RUN.search(before)
            out.append(Block(f"{path.relative_to(ROOT)}:{start + 1}", "\n".join(body) + "\n",
                             (marker.group(1) or "no reason given") if marker else None))
        i += 1
    return out


BLOCKS = [block for path in doc_files() for block in python_blocks(path)]

# the child: runs each distinct source in a fresh namespace and folder, reports as JSON
DRIVER = r'''
import contextlib, io, json, os, sys, tempfile, time, traceback

sources, report = json.load(open(sys.argv[1])), sys.argv[2]
results, home = [], os.getcwd()
for src in sources:
    out, err = io.StringIO(), io.StringIO()
    t0, ok, tb = time.perf_counter(), True, ""
    with tempfile.TemporaryDirectory() as cwd:
        os.chdir(cwd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                path, line = src["where"].rsplit(":", 1)  # tracebacks name the Markdown file's own lines
                exec(compile("\n" * int(line) + src["source"], path, "exec"), {"__name__": "__main__"})
        except BaseException:
            ok, tb = False, traceback.format_exc()
        finally:
            os.chdir(home)
    results.append({"ok": ok, "traceback": tb, "stdout": out.getvalue(), "stderr": err.getvalue()[-4000:],
                    "seconds": time.perf_counter() - t0})
    with open(report, "w") as f:
        json.dump(results, f)
'''


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict[str, dict]:
    """{source: result} for every distinct runnable block, from one child process."""
    sources = list(dict.fromkeys(b.source for b in BLOCKS if b.no_run is None))
    where = {s: next(b.where for b in BLOCKS if b.source == s) for s in sources}
    tmp = tmp_path_factory.mktemp("docs_code")
    (tmp / "driver.py").write_text(DRIVER)
    (tmp / "blocks.json").write_text(json.dumps([{"where": where[s], "source": s} for s in sources]))
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run([sys.executable, str(tmp / "driver.py"), str(tmp / "blocks.json"), str(tmp / "report.json")],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    results = json.loads((tmp / "report.json").read_text()) if (tmp / "report.json").exists() else []
    if len(results) < len(sources):  # the child died inside a block: blame that one
        crash = {"ok": False, "traceback": f"the child process died (exit {proc.returncode}):\n{proc.stderr[-4000:]}",
                 "stdout": "", "stderr": "", "seconds": 0.0}
        results += [crash] * (len(sources) - len(results))
    return dict(zip(sources, results, strict=True))


def test_blocks_found():
    assert any(b.where.startswith("README.md:") for b in BLOCKS), "the README has no ```python block"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_block_runs(block: Block, ran):
    if block.no_run is not None:
        pytest.skip(f"{block.where} marked no-run: {block.no_run}")
    res = ran[block.source]
    assert res["ok"], f"{block.where} failed:\n{res['traceback']}\nstdout:\n{res['stdout'][-2000:]}"
    if re.search(r"\bprint\(", block.source):
        assert res["stdout"].strip(), f"{block.where} prints, but printed nothing"


def test_readme_length():
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; keep it to {README_MAX_LINES} and move detail to docs/"
