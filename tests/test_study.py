import json
import subprocess
import sys
from pathlib import Path

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
    # the study's 7 figures, then the explain section's (one per figure file it wrote)
    explain_figs = list((out / "explain" / "figures").glob("*.png"))
    assert explain_figs and html.count("data:image/png;base64,") == 7 + len(explain_figs)
    assert "Why: Agreement of the weak classes across runs" in html
    results_explain = json.loads((out / "results.json").read_text())["explain"]
    assert any("Kendall's W" in line for line in results_explain)
    assert json.loads((out / "explain" / "explain.json").read_text())["answers"] == results_explain
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
                           "--preset", "smoke", "--out", str(out), "--resume", "--no-figures"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    after = json.loads((out / "results.json").read_text())
    assert "resuming from epoch" in proc.stderr
    assert "<img" not in (out / "report.html").read_text()  # a resume may change how the study reports
    for name in ("standard", "fgsm-rs"):
        assert after["models"][name]["clean"] == before["models"][name]["clean"]
        assert after["models"][name]["robust"] == before["models"][name]["robust"]


ARMS = ["standard", "fgsm-rs", "trades"]


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    """Three arms x two seeds on digits at a smoke-sized budget, through the Python API; the
    trades arm fine-tunes the fgsm-rs arm's model, as FRL fine-tunes a robust one."""
    from classwise.study import preset_config, run_study

    out = tmp_path_factory.mktemp("study") / "seeds"
    cfg = preset_config("smoke", dataset="digits", methods=ARMS, seeds=[0, 1], epochs=1, train_limit=300,
                        eval_subset=50, eval_steps=2, test_steps=3, test_limit=None, attack_steps=2,
                        init_from={"trades": "fgsm-rs"})
    cfg = cfg.model_copy(update={"sanity": False, "resamples": 300})
    return out, run_study(cfg, out, device="cpu").model_dump()  # the typed result, as results.json holds it


def _per_class_from_eval(path, key):
    ev = json.loads(path.read_text())
    labels, pred = np.array(ev["labels"]), np.array(ev["clean_pred"] if key == "clean" else ev["adv_pred"][key])
    return np.array([(pred[labels == c] == c).mean() for c in range(len(ev["classes"]))]), labels, pred


def test_two_seeds_store_both_runs_and_mean_std_matches_them(seeds_run):
    from classwise.analysis.seeds import by_config
    from classwise.study.store import Store

    out, results = seeds_run
    assert results["seeds"] == [0, 1] and results["arms"] == ARMS
    attack = results["attack"]
    for arm in ARMS:
        for metric, key in (("clean", "clean"), ("robust", attack)):
            runs = [_per_class_from_eval(out / arm / f"seed{s}" / "eval.json", key)[0] for s in (0, 1)]
            s = results["models"][arm][metric]
            mean = [s["per_class"][c] for c in results["classes"]]
            std = [s["per_class_std"][c] for c in results["classes"]]
            np.testing.assert_allclose(mean, np.mean(runs, 0))
            np.testing.assert_allclose(std, np.std(runs, 0, ddof=1))
            assert s["worst"] == pytest.approx(np.mean(runs, 0).min())
            assert s["mean_ci"][0] <= s["mean"] <= s["mean_ci"][1]
            assert sum(s["weakest_probability"].values()) == pytest.approx(1)
        for seed in (0, 1):
            assert (out / arm / f"seed{seed}" / "model.pt").is_file()
    store = Store(out / "study.db")
    table = store.runs_table()
    assert len(table) == 6 and set(table["status"]) == {"finished"}
    groups = by_config({i: store.config(i) for i in table["id"]}, dict(zip(table["id"], table["status"], strict=True)),
                       store.tidy())
    assert sorted(groups["method"]) == sorted(ARMS) and set(groups["seeds"]) == {"0,1"}
    fg = groups.set_index("method").loc["fgsm-rs", "clean"]
    means = [_per_class_from_eval(out / "fgsm-rs" / f"seed{s}" / "eval.json", "clean")[0].mean() for s in (0, 1)]
    assert fg == f"{np.mean(means) * 100:.1f} ± {np.std(means, ddof=1) * 100:.1f}"


def test_three_arm_study_writes_every_arm_everywhere(seeds_run):
    out, results = seeds_run
    csv = pd.read_csv(out / "per_class.csv", keep_default_na=False, dtype={"class": str})
    last = csv[csv.checkpoint == "last"]
    assert sorted(set(zip(last.model, last.seed, strict=True))) == sorted((a, s) for a in ARMS for s in (0, 1))
    assert len(last) == 3 * 2 * 2 * 10
    html = (out / "report.html").read_text()
    for i, arm in enumerate(ARMS, start=1):
        assert f"Figure {i}: {arm} arm" in html and f"Weakest class of the {arm} arm" in html
        assert (out / "figures" / f"figure{i}_{arm}.png").is_file()
    assert html.count("data:image/png;base64,") == 3 * 3 + 1 + len(list((out / "explain" / "figures").glob("*.png")))
    pairs = {(c["arm_a"], c["arm_b"]) for c in results["comparisons"]}
    assert pairs == {("standard", "fgsm-rs"), ("standard", "trades"), ("fgsm-rs", "trades")}
    for c in results["comparisons"]:
        assert c["difference"] == pytest.approx(c["b"] - c["a"])
        assert c["verdict"] == ("up" if c["low"] > 0 else "down" if c["high"] < 0 else "no clear difference")
    assert any(line.startswith("Robust accuracy across classes (standard → trades): ") for line in results["answers"])
    assert any(line.startswith("trades against fgsm-rs under ") for line in results["answers"])
    # McNemar's discordant pairs as counted from the two runs' per-sample records
    mc = pd.read_csv(out / "mcnemar.csv", dtype={"class": str})
    row = mc[(mc.a == "standard") & (mc.b == "trades") & (mc.metric == "clean") & (mc.seed == 1) & (mc["class"] == "3")]
    _, labels, pa = _per_class_from_eval(out / "standard" / "seed1" / "eval.json", "clean")
    _, _, pb = _per_class_from_eval(out / "trades" / "seed1" / "eval.json", "clean")
    sel = labels == 3
    assert row["only_a"].item() == int(((pa == labels) & (pb != labels))[sel].sum())
    assert row["only_b"].item() == int(((pa != labels) & (pb == labels))[sel].sum())
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert {(r["model"], r["seed"]) for r in lines} == {(a, s) for a in ARMS for s in (0, 1)}


def test_an_arm_starts_from_the_earlier_arms_weights_at_its_seed(seeds_run):
    import torch

    out, results = seeds_run
    assert results["init_from"] == {"trades": "fgsm-rs"}
    for seed in (0, 1):
        config = torch.load(out / "trades" / f"seed{seed}" / "checkpoint.pt", weights_only=False)["config"]
        assert config["init_weights"] == str((out / "fgsm-rs" / f"seed{seed}" / "model.pt").resolve())
        assert torch.load(out / "fgsm-rs" / f"seed{seed}" / "checkpoint.pt", weights_only=False)["config"][
            "init_weights"] is None
    assert "trades (fine-tuned from fgsm-rs)" in (out / "report.html").read_text()


def test_resume_may_add_an_arm_and_reuses_the_others_but_never_drops_one(tmp_path):
    from classwise.errors import ClasswiseError
    from classwise.study import preset_config, run_study

    def cfg(methods):
        c = preset_config("smoke", dataset="digits", methods=methods, epochs=1, train_limit=200, eval_subset=30,
                          eval_steps=1, test_steps=1, test_limit=60)
        return c.model_copy(update={"sanity": False, "resamples": 100, "figures": False})

    out = tmp_path / "s"
    first = run_study(cfg(["standard"]), out, device="cpu").model_dump()
    eval_file = out / "standard" / "eval.json"
    stamp = eval_file.stat().st_mtime_ns
    both = run_study(cfg(["standard", "fgsm-rs"]), out, device="cpu", resume=True).model_dump()
    assert eval_file.stat().st_mtime_ns == stamp  # reused, not re-evaluated
    assert both["models"]["standard"]["clean"] == first["models"]["standard"]["clean"]
    assert (out / "fgsm-rs" / "model.pt").is_file() and both["arms"] == ["standard", "fgsm-rs"]
    assert json.loads((out / "config.json").read_text())["methods"] == ["standard", "fgsm-rs"]
    with pytest.raises(ClasswiseError, match="not drop them: give --methods standard,fgsm-rs"):
        run_study(cfg(["fgsm-rs"]), out, device="cpu", resume=True)


def test_archived_runs_give_the_study_reports_numbers(seeds_run, tmp_path, monkeypatch):
    """benchmarks/study_archive.py keeps a multi-sitting study's runs as predictions; its tables
    must be the study's own: the same class means, worst classes and bootstrap intervals."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import study_archive

    out, results = seeds_run
    archive = tmp_path / "archive"
    assert sorted(study_archive.pack(out, archive)) == sorted(f"{a}-seed{s}" for a in ARMS for s in (0, 1))
    assert study_archive.pack(out, archive) == []  # archived once
    text = study_archive.tables(archive, "fgsm-rs", results["resamples"])
    for arm in ARMS:
        r = results["models"][arm]["robust"]
        row = next(line for line in text.splitlines() if line.startswith(f"| {arm} |"))
        mean = f"{100 * r['mean']:.1f} [{100 * r['mean_ci'][0]:.1f}, {100 * r['mean_ci'][1]:.1f}]"
        worst = f"{100 * r['worst']:.1f} [{100 * r['worst_ci'][0]:.1f}, {100 * r['worst_ci'][1]:.1f}]"
        assert f"| {mean} | {worst} |" in row, (row, mean, worst)
    meta = json.loads((archive / "trades-seed0.json").read_text())
    meta["config"]["lr"] *= 2
    (archive / "trades-seed0.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match="other settings"):
        study_archive.pack(out, archive)
