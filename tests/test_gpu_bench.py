"""benchmarks/gpu.py in its tiny CPU mode, so that the GPU benchmark cannot rot between the runs
on a CUDA machine: every phase (the four training epochs, the per-class PGD-20 evaluation at both
precisions, AutoAttack), the FLOP counts and the results file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gpu  # noqa: E402


def test_tiny_mode_runs_every_phase_and_writes_the_results(tmp_path, capsys):
    out = tmp_path / "gpu-tiny.json"
    compile_ok = True
    try:
        torch.compile(lambda t: t + 1)(torch.ones(2))
    except Exception:  # noqa: BLE001 - no inductor here: the compiled epochs are left out
        compile_ok = False
    assert gpu.main(["--tiny", "--out", str(out)] + ([] if compile_ok else ["--no-compile"])) == 0
    res = json.loads(out.read_text())
    assert res["tiny"] and res["machine"]["device"] == "cpu" and "mitigation-paper" in res["setting"]
    flops = res["flops_per_image"]
    # one TRADES step: the reference pass, PGD-10's passes and the three training passes with their backward
    assert flops["train_step"] == pytest.approx(flops["forward"] + 10 * flops["attack_pass"] + flops["train_passes"])
    assert flops["attack_pass"] > flops["forward"] > 0
    epochs = {(e["precision"], e["compiled"]): e for e in res["train_epoch"]}
    want = {("fp32", False), ("bf16", False)} | ({("fp32", True), ("bf16", True)} if compile_ok else set())
    assert set(epochs) == want
    for e in epochs.values():
        assert e["seconds"] > 0 and e["images"] == 64 and e["tflops"] > 0 and e["fraction_of_matmul_peak"] > 0
        assert torch.isfinite(torch.tensor(e["train_loss"]))
    assert [e["precision"] for e in res["pgd20_eval"]] == ["fp32", "bf16"]
    assert all(e["images"] == 20 and len(e["pgd20_per_class"]) == 10 for e in res["pgd20_eval"])
    aa = res["autoattack"]
    assert "skipped" in aa or (aa["precision"] == "fp32" and aa["images"] == 10)
    printed = capsys.readouterr().out
    assert "train epoch bf16" in printed and "per-class PGD-20" in printed and str(out) in printed


def test_without_cuda_it_says_so_in_one_line(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert gpu.main([]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--tiny" in err and len(err.strip().splitlines()) == 1
