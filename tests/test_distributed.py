"""Distribution for real: a Slurm cluster on localhost and a torchrun launch on CPU."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from slurm_cluster import missing, slurm_cluster

from classwise.data import load_dataset
from classwise.study.store import Store


def test_torchrun_two_processes_count_every_test_image_exactly_once(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--master-port", "29531", "-m", "classwise", "train", "--dataset", "digits",
                           "--method", "fgsm-rs", "--epochs", "2", "--test-steps", "5", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    test = load_dataset("digits").test
    ev = json.loads((out / "eval.json").read_text())
    assert ev["labels"] == test.labels.tolist()  # every image once, in order, no padded duplicates
    assert len(ev["clean_pred"]) == len(test) and len(ev["adv_pred"]["pgd5"]) == len(test)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # written by rank 0 only
    assert sum(records[0]["val_n_per_class"]) == len(load_dataset("digits").val)
    assert np.mean(np.array(ev["clean_pred"]) == np.array(ev["labels"])) > 0.5
    assert proc.stdout.count("trained mnist-cnn") == 1


GRID = """
name = "slurm-grid"
[run]
dataset = "digits"
epochs = 2
lr = 0.05
weight_decay = 0.0
eval_subset = 100
eval_steps = 2
test_steps = 3
[grid]
method = ["standard", "fgsm-rs"]
"""


@pytest.mark.skipif(bool(missing()) or os.geteuid() != 0,
                    reason=f"needs root and Debian's slurm-wlm, slurmdbd, munge, mariadb-server "
                           f"(.ci/run installs them); missing: {missing()}")
def test_sweep_through_a_real_slurm_cluster(tmp_path):
    pytest.importorskip("submitit")
    (tmp_path / "grid.toml").write_text(GRID)
    with slurm_cluster(tmp_path / "cluster") as env:
        proc = subprocess.run([sys.executable, "-m", "classwise", "sweep", str(tmp_path / "grid.toml"),
                               "--executor", "slurm", "--out", str(tmp_path / "study"), "--max-parallel", "2",
                               "--cpus", "1", "--time", "10", "--quiet"],
                              capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        assert "submitted 2 Slurm jobs" in proc.stdout + proc.stderr
        sacct = subprocess.run(["sacct", "-n", "-X", "-o", "JobName%40,State"], capture_output=True, text=True,
                               env=env).stdout
    store = Store(tmp_path / "study" / "study.db")
    assert sorted(store.status().values()) == ["finished", "finished"]
    runs = store.runs_table()
    assert set(runs["host"]) and all(runs["attempts"] == 1)
    final = store.tidy().query("epoch == -1 and attack == 'none'")
    assert final.groupby("run")["n"].sum().tolist() == [450, 450]
    assert "classwise-study" in sacct and "COMPLETED" in sacct
    assert shutil.which("sbatch", path=env["PATH"])
