"""One writer per study folder: two `classwise study` processes on one --out train each run
once (the second says which process holds the folder and exits 2, or waits with --wait); a
lock left by a killed process is taken over."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from classwise.study.lock import LOCK, FolderBusyError, FolderLock

STUDY = ["study", "--dataset", "digits", "--preset", "smoke", "--methods", "standard,fgsm-rs", "--epochs", "2",
         "--train-limit", "200", "--eval-subset", "20", "--eval-steps", "1", "--test-limit", "50", "--test-steps", "1",
         "--no-figures", "--no-sanity"]


def _spawn(args, **env):
    return subprocess.Popen([sys.executable, "-m", "classwise", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), **env})


def _wait_for(cond, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_two_studies_on_one_folder_train_each_run_once(tmp_path):
    out = tmp_path / "study"
    # the first study holds the folder; its writes are slowed so that it is still at work when the others come
    first = _spawn([*STUDY, "--out", str(out)], CLASSWISE_TEST_WRITE_DELAY="0.5")
    _wait_for(lambda: (out / LOCK).is_file() and (out / "config.json").is_file(), first)
    holder = json.loads((out / LOCK).read_text())
    assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()

    second = subprocess.run([sys.executable, "-m", "classwise", *STUDY, "--out", str(out)], capture_output=True,
                            text=True, timeout=120)
    assert first.poll() is None, "the first study must still hold the folder"
    lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert f"in use by another classwise study: process {first.pid} on {socket.gethostname()}" in lines[0]
    assert "--wait" in lines[0] and "Traceback" not in second.stderr

    out_first, err_first = first.communicate(timeout=300)
    assert first.returncode == 0, err_first
    with sqlite3.connect(out / "study.db") as db:
        attempts = dict(db.execute("SELECT id, attempts FROM runs").fetchall())
    assert len(attempts) == 2 and set(attempts.values()) == {1}  # each run trained exactly once
    assert not (out / LOCK).exists()  # released on exit

    # --wait: a third study waits while the folder is held (here by this process), then re-reports
    with FolderLock(out) as held:
        waiting = _spawn([*STUDY, "--out", str(out), "--resume", "--wait"])
        said = waiting.stderr.readline()  # blocks until it says it is waiting
        assert f"{out} is in use by process {os.getpid()}" in said and "waiting" in said, said
        assert waiting.poll() is None and json.loads(held.path.read_text())["pid"] == os.getpid()
    out_wait, err_wait = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err_wait
    assert err_wait.count("finished, its test evaluation is reused") == 2  # both arms reused, none trained again
    assert "epoch 1:" in err_first and "epoch 1:" not in err_wait
    with sqlite3.connect(out / "study.db") as db:
        assert dict(db.execute("SELECT id, attempts FROM runs").fetchall()) == attempts


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    folder = tmp_path / "study"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from classwise.study.lock import FolderLock; "
                               f"FolderLock({str(folder)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(FolderBusyError, match=f"process {holder.pid} on "):
        FolderLock(folder).acquire()
    os.kill(holder.pid, signal.SIGKILL)  # no cleanup: its lock file stays, with its dead pid
    holder.wait()
    assert json.loads((folder / LOCK).read_text())["pid"] == holder.pid
    with FolderLock(folder) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert not (folder / LOCK).exists()


def test_the_lock_is_per_folder_and_released(tmp_path):
    a, b = FolderLock(tmp_path / "a"), FolderLock(tmp_path / "b")
    with a, b:  # two folders: two locks
        with pytest.raises(FolderBusyError, match="in use by another classwise study"):
            FolderLock(tmp_path / "a").acquire()
        assert FolderLock(tmp_path / "a").holder()["pid"] == os.getpid()
    assert FolderLock(tmp_path / "a").holder() is None
    assert sorted(p.name for p in Path(tmp_path / "a").iterdir()) == []  # nothing left behind
