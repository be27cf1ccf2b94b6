"""Grids as sweeps: a SQLite results database, SIGKILL mid-run and restart, exports."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from classwise.study.store import Store

GRID = """
name = "digits-grid"
[run]
dataset = "digits"
arch = "mnist-cnn"
epochs = 4
lr = 0.05
weight_decay = 0.0
eval_subset = 100
eval_steps = 3
test_steps = 5
[grid]
method = ["standard", "fgsm-rs"]
seed = [0]
"""


def _sweep(config, out, *extra, **kw):
    return subprocess.Popen([sys.executable, "-m", "classwise", "sweep", str(config), "--out", str(out), "--quiet",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def _db(out):
    return sqlite3.connect(out / "study.db")


def _results(out):
    table = Store(out / "study.db").tidy()
    return table.sort_values(["run", "epoch", "split", "attack", "class"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    (root / "grid.toml").write_text(GRID)
    proc = _sweep(root / "grid.toml", root / "full")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return root


def test_sigkill_mid_run_then_restart_finishes_every_run_once_with_the_same_results(uninterrupted, tmp_path):
    config, out = uninterrupted / "grid.toml", tmp_path / "killed"
    proc = _sweep(config, out)
    killed_run = None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
        if not (out / "study.db").exists():
            continue
        try:
            with _db(out) as db:
                running = db.execute("SELECT id FROM runs WHERE status='running'").fetchall()
                finished = db.execute("SELECT COUNT(*) FROM runs WHERE status='finished'").fetchone()[0]
                epochs = {r: n for r, n in db.execute("SELECT run_id, COUNT(*) FROM epochs GROUP BY run_id")}
        except sqlite3.OperationalError:
            continue
        mid = [r for (r,) in running if 1 <= epochs.get(r, 0) < 4]
        if finished >= 1 and mid:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_run = mid[0]
            break
    proc.wait()
    assert killed_run is not None, "the kill must land in the middle of a run"
    with _db(out) as db:
        before = dict(db.execute("SELECT id, finished FROM runs WHERE status='finished'").fetchall())
    assert killed_run not in before

    proc = _sweep(config, out)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    with _db(out) as db:
        rows = db.execute("SELECT id, status, attempts, finished FROM runs").fetchall()
        per_run_epochs = dict(db.execute("SELECT run_id, COUNT(*) FROM epochs GROUP BY run_id").fetchall())
    assert len(rows) == 2 and all(status == "finished" for _, status, _, _ in rows)
    for rid, _, attempts, finished in rows:
        if rid in before:  # finished before the kill: never run again
            assert attempts == 1 and finished == before[rid]
    assert dict((r, a) for r, _, a, _ in rows)[killed_run] == 2
    assert set(per_run_epochs.values()) == {4}
    pd.testing.assert_frame_equal(_results(out), _results(uninterrupted / "full"))


def test_a_finished_sweep_runs_nothing_again(uninterrupted):
    proc = _sweep(uninterrupted / "grid.toml", uninterrupted / "full")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0
    assert "2 finished, 0 to run" in out + err


def test_runs_lists_status_and_exports_a_tidy_table(uninterrupted, tmp_path):
    from classwise.cli import main

    study = uninterrupted / "full"
    assert main(["runs", str(study)]) == 0
    assert main(["runs", str(study), "--export", "csv", "--output", str(tmp_path / "r.csv")]) == 0
    assert main(["runs", str(study), "--export", "parquet", "--output", str(tmp_path / "r.parquet")]) == 0
    csv = pd.read_csv(tmp_path / "r.csv", dtype={"class": str})
    parquet = pd.read_parquet(tmp_path / "r.parquet")
    assert list(csv.columns) == ["run", "epoch", "split", "attack", "class", "accuracy", "n"]
    pd.testing.assert_frame_equal(csv, parquet, check_dtype=False)
    final = csv[(csv.epoch == -1) & (csv.attack == "none")]
    assert final.groupby("run")["n"].sum().tolist() == [450] * 2  # every test image, once per run
    assert sorted(csv[csv.split == "val"]["epoch"].unique()) == [1, 2, 3, 4]


def test_an_epoch_is_written_whole_or_not_at_all(tmp_path):
    store = Store(tmp_path / "study.db")
    store.register({"r1": {"dataset": "digits"}})
    record = {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "lr": 0.1, "seconds": 1.0,
              "val_clean_per_class": [0.5, 0.7]}
    with pytest.raises(sqlite3.IntegrityError):
        store.record_epoch("r1", record, ["a", None], [10, 10])  # the second row breaks NOT NULL
    with _db(tmp_path) as db:
        assert db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM per_class").fetchone()[0] == 0
    store.record_epoch("r1", record, ["a", "b"], [10, 10])
    with _db(tmp_path) as db:
        assert db.execute("SELECT COUNT(*) FROM per_class").fetchone()[0] == 2
