"""`classwise study --dataset cifar10 --arch A --preset smoke` for every architecture, on a
small synthetic CIFAR-10 written in the official python layout."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from datafiles import write_cifar10

from classwise.cli import main
from classwise.models import MODELS


@pytest.fixture
def out_root():
    """Checkpoints of the large models are hundreds of MB an epoch: keep them in memory."""
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else None, prefix="classwise-zoo-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=8, n_test=20)  # 40 training images: 10 for validation, 30 to train
    return root


def _check(out, arch, figures: bool):
    results = json.loads((out / "results.json").read_text())
    assert results["arch"] == arch and results["dataset"] == "cifar10"
    assert results["eps"] == pytest.approx(8 / 255)
    for name in ("standard", "fgsm-rs"):
        assert len(results["models"][name]["clean"]["per_class"]) == 10
    report = (out / "report.html").read_text()
    assert "Per-class detail with 95% Wilson intervals" in report and len(report) > 10_000
    pngs = sorted(out.rglob("*.png"))
    # figures: the two arms' Figure 1/2, trends and confusions, the trade-off, the explain heatmaps
    assert (len(pngs) > 10 and report.count("<img") == len(pngs)) if figures else (pngs == [] and "<img" not in report)


def test_study_cli_resnet18_on_official_cifar_layout(cifar_dir, out_root):
    out = out_root / "run"
    proc = subprocess.run([sys.executable, "-m", "classwise", "study", "--dataset", "cifar10", "--arch", "resnet18",
                           "--preset", "smoke", "--data-dir", str(cifar_dir), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    _check(out, "resnet18", figures=True)


@pytest.mark.parametrize("arch", sorted(set(MODELS) - {"resnet18"}))
def test_study_runs_for_every_architecture(cifar_dir, out_root, arch):
    # one epoch on ten images, one-step attacks on ten: the wide ResNets and Inception-v3 in seconds on a CPU;
    # no figures (half of a smoke study's time; the resnet18 study above draws them, the same for every arch)
    out = out_root / arch
    code = main(["study", "--dataset", "cifar10", "--arch", arch, "--preset", "smoke", "--data-dir", str(cifar_dir),
                 "--out", str(out), "--epochs", "1", "--train-limit", "10", "--eval-steps", "1", "--test-steps", "1",
                 "--test-limit", "10", "--quiet", "--no-figures"])
    assert code == 0
    _check(out, arch, figures=False)
