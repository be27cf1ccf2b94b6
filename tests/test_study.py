import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "digits"
    proc = subprocess.run([sys.executable, "-m", "classwise", "study", "--dataset", "digits",
                           "--preset", "smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_results_json_agrees_with_per_class_csv_and_its_means(digits_run):
    out, _ = digits_run
    results = json.loads((out / "results.json").read_text())
    csv = pd.read_csv(out / "per_class.csv", keep_default_na=False, dtype={"class": str})
    assert results["classes"] == [str(d) for d in range(10)]
    for name, model in results["models"].items():
        for metric in ("clean", "robust"):
            s = model[metric]
            rows = csv[(csv.model == name) & (csv.metric == metric) & (csv.checkpoint == "last")].set_index("class")
            acc = rows["accuracy"]
            assert set(acc.index) == set(s["per_class"])
            for cls, value in s["per_class"].items():
                assert value == pytest.approx(acc[cls], abs=1e-12)
                assert value == pytest.approx(rows.loc[cls, "correct"] / rows.loc[cls, "n"])
            assert s["mean"] == pytest.approx(np.mean(list(s["per_class"].values())))
            assert s["std"] == pytest.approx(np.std(list(s["per_class"].values())))
            assert s["overall"] == pytest.approx(rows["correct"].sum() / rows["n"].sum())
            assert s["worst"] == pytest.approx(min(s["per_class"].values()))
            assert s["per_class"][s["worst_class"]] == s["worst"]
            assert s["gap"] == pytest.approx(s["best"] - s["worst"])
            assert rows["n"].sum() == results["n_test"]
        last = csv[(csv.model == name) & (csv.checkpoint == "last")]
        assert (last[last.metric == "robust"]["accuracy"].to_numpy()
                <= last[last.metric == "clean"]["accuracy"].to_numpy() + 1e-12).all()


def test_run_directory_holds_config_metrics_figures_and_report(digits_run):
    out, proc = digits_run
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["eps"] == pytest.approx(0.1) and config["preset"] == "smoke"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == {"standard", "fgsm-rs"}
    assert all(len(r["val_clean_per_class"]) == 10 and len(r["val_robust_per_class"]) == 10 for r in records)
    assert [r["epoch"] for r in records if r["model"] == "standard"] == list(range(1, config["run"]["epochs"] + 1))
    for fig in ("figure1_standard", "figure2_fgsm-rs", "trend_standard", "trend_fgsm-rs",
                "confusion_standard", "confusion_fgsm-rs", "tradeoff"):
        assert (out / "figures" / f"{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 7
    assert "src=\"http" not in html and "<link" not in html
    results = json.loads((out / "results.json").read_text())
    assert results["arms"] == ["standard", "fgsm-rs"]
    for name in ("standard", "fgsm-rs"):
        worst = results["models"][name]["clean"]["worst_class"]
        line = f"Weakest class of the {name} arm"
        assert line in html and line in proc.stdout
        assert f"'{worst}' clean" in proc.stdout


def test_resume_of_a_finished_study_retrains_nothing(digits_run, tmp_path):
    out, _ = digits_run
    before = json.loads((out / "results.json").read_text())
    proc = subprocess.run([sys.executable, "-m", "classwise", "study", "--dataset", "digits",
                           "--preset", "smoke", "--out", str(out), "--resume"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    after = json.loads((out / "results.json").read_text())
    assert "resuming from epoch" in proc.stderr
    for name in ("standard", "fgsm-rs"):
        assert after["models"][name]["clean"] == before["models"][name]["clean"]
        assert after["models"][name]["robust"] == before["models"][name]["robust"]
