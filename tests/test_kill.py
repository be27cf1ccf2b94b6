"""SIGKILL in the middle of a checkpoint write and of a `--jobs 2` sweep, and Ctrl-C of a sweep:
afterwards no worker is left, no temporary file survives the resume, every run finished
exactly once, and the per-class results are bit-identical to an uninterrupted run."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from classwise.cli import main
from classwise.study.store import Store

TRAIN = ["train", "--dataset", "digits", "--epochs", "3", "--train-limit", "200", "--eval-subset", "30",
         "--eval-steps", "1", "--test-limit", "50", "--test-steps", "2", "--quiet"]
GRID = """
name = "killgrid"
[run]
dataset = "digits"
epochs = 2
train_limit = 200
eval_subset = 30
eval_steps = 1
test_limit = 50
test_steps = 2
[grid]
seed = [0, 1, 2]
"""


def _env(**extra):
    # the same torch thread count as this process: results depend on it
    return {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), **extra}


def _spawn(args, **extra):
    return subprocess.Popen([sys.executable, "-m", "classwise", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=_env(**extra))


def _wait(cond, proc, timeout=240, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended before {what}: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*.tmp")]


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (zombies are dead and hold nothing)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def _per_class(run_dir: Path) -> tuple:
    ev = json.loads((run_dir / "eval.json").read_text())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    per_epoch = [{k: v for k, v in m.items() if k != "seconds"} for m in metrics]
    return ev, per_epoch


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_sigkill_during_a_checkpoint_write_then_resume_is_bit_identical(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = _spawn([*TRAIN, "--out", "killed"], CLASSWISE_TEST_WRITE_DELAY="1.0")
    out = tmp_path / "killed"
    # the second epoch's checkpoint is being written: the first one exists, a temporary file too
    _wait(lambda: (out / "checkpoint.pt").exists() and any(out.glob(".checkpoint.pt.*.tmp")), proc,
          what="a checkpoint write after the first")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _temps(out), "the kill must land during a write"
    assert not (out / "eval.json").exists()

    assert main([*TRAIN, "--out", "ref"]) == 0  # uninterrupted, meanwhile
    assert main([*TRAIN, "--out", "killed", "--resume"]) == 0
    assert _temps(out) == []
    assert _per_class(out) == _per_class(tmp_path / "ref")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The grid swept with --jobs 1, start to end (in this process: same thread count as the
    sweeps below, see `_env`)."""
    root = tmp_path_factory.mktemp("killgrid")
    (root / "grid.toml").write_text(GRID)
    assert main(["sweep", str(root / "grid.toml"), "--out", str(root / "ref"), "--quiet"]) == 0
    return root


def _table(study: Path):
    t = Store(study / "study.db", readonly=True).tidy()
    return t.sort_values(["run", "epoch", "split", "attack", "class"]).reset_index(drop=True)


def _counts(study: Path, sql: str) -> dict:
    with sqlite3.connect(study / "study.db") as db:
        return dict(db.execute(sql).fetchall())


def _gone(proc) -> list[int]:
    deadline = time.time() + 10
    while _group_members(proc.pid) and time.time() < deadline:
        time.sleep(0.1)
    return _group_members(proc.pid)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_ctrl_c_then_sigkill_of_a_jobs2_sweep_then_resume_is_bit_identical(uninterrupted, tmp_path):
    """One study folder through a Ctrl-C, a SIGKILL of the sweep (its workers must notice) and a
    rerun to the end; compared with the grid swept uninterrupted by --jobs 1."""
    config, out = uninterrupted / "grid.toml", tmp_path / "killed"
    sweep = ["sweep", str(config), "--out", str(out), "--jobs", "2", "--quiet"]

    def attempts():
        try:
            return _counts(out, "SELECT id, attempts FROM runs")
        except sqlite3.Error:
            return {}

    # Ctrl-C while the first two runs train: the third must not start
    proc = _spawn(sweep)
    _wait(lambda: sum(a > 0 for a in attempts().values()) >= 2, proc, what="two runs started")
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun the same command" in err and "--resume" not in err
    assert _gone(proc) == [], "a worker outlived its sweep"
    assert sorted(attempts().values()) == [0, 1, 1], "a queued run was started after Ctrl-C"

    # SIGKILL of the sweep alone, mid-run
    proc = _spawn(sweep)
    _wait(lambda: sum(a >= 2 for a in attempts().values()) >= 2, proc, what="two runs resumed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _gone(proc) == [], "a worker outlived its sweep"
    before, at_kill = _counts(out, "SELECT id, status FROM runs"), attempts()
    assert list(before.values()).count("finished") < 3

    # rerun to the end
    proc = _spawn(sweep)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    status = _counts(out, "SELECT id, status FROM runs")
    assert set(status.values()) == {"finished"} and len(status) == 3
    after = attempts()  # a run finished before the rerun is not run again: every run finished exactly once
    assert all(after[rid] == at_kill[rid] for rid, s in before.items() if s == "finished")
    assert all(after[rid] == at_kill[rid] + 1 for rid, s in before.items() if s != "finished")
    assert _temps(out) == []
    # each run's final evaluation is there once (one row per class and attack), and matches
    finals = _counts(out, "SELECT run_id, COUNT(*) FROM per_class WHERE epoch = -1 GROUP BY run_id")
    assert set(finals.values()) == {2 * 10}
    ref, got = _table(uninterrupted / "ref"), _table(out)
    assert ref.equals(got), "per-class results differ from the uninterrupted --jobs 1 sweep"
