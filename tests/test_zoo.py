"""RobustBench's zoo, class by class, on stand-ins: zoo models built by the robustbench package's
own definitions for their names (L-inf: PreActResNet-18 and two ResNet-18s; corruptions: a
WideResNet-40-2 and a ResNet-18), their last layer fitted to a tiny synthetic CIFAR-10, saved in
RobustBench's model directory layout, with model_info JSONs whose published accuracies are what
those weights give on the first 20 test images (one deliberately wrong, to be flagged).
AutoAttack runs at a reduced budget (APGD-CE, 2 iterations); the kill-and-resume and Slurm tests
use the corruption zoo at one corruption and severity, which costs two forward passes a model.
Tests marked `needs_robustbench` skip without the extra (`classwise[robustbench]`)."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from datafiles import write_cifar10, write_model_info, write_robustbench_standins
from slurm_cluster import missing, slurm_cluster

from classwise.cli import main
from classwise.errors import ClasswiseError
from classwise.zoo import available

needs_robustbench = pytest.mark.skipif(not available(), reason="needs the robustbench extra: "
                                       "pip install 'classwise[robustbench]'")

MODELS = ["Wong2020Fast", "Addepalli2021Towards_RN18", "Sehwag2021Proxy_R18"]
MISSING = "Carmon2019Unlabeled"  # on the leaderboard and in the package, but no weights here
N = 20  # test images of the corruption zoo (two forward passes a model)
NL = 10  # test images of the L-inf zoo (AutoAttack: its checks alone are 7 forward passes)
QUICK = ["--aa-attacks", "apgd-ce", "--aa-iterations", "2"]
FACTS = {"Wong2020Fast": ("PreActResNet-18", False, "ICLR 2020"),
         "Addepalli2021Towards_RN18": ("ResNet-18", False, "ECCV 2022"),
         "Sehwag2021Proxy_R18": ("ResNet-18", True, "ICLR 2022"),
         MISSING: ("WideResNet-28-10", True, "NeurIPS 2019")}


def _zoo_args(root, out, models, *extra, quiet=True):
    return ["zoo", "--models", ",".join(models), "--dataset", "cifar10", "--threat", "linf", "--n", str(NL),
            "--model-dir", str(root / "models"), "--data-dir", str(root / "data"), "--out", str(out),
            "--no-fetch", "--no-download", *QUICK, *extra] + (["--quiet"] if quiet else [])


def _run(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A synthetic CIFAR-10 in the official layout: 100 training images (evaluate carves a
    validation split from them), 30 test images, of which the zoos take the first NL or N."""
    root = tmp_path_factory.mktemp("zoo")
    _, _, batches = write_cifar10(root / "data", per_batch=20, n_test=30)
    data, labels = batches["test_batch"]
    return SimpleNamespace(root=root, images=data.reshape(-1, 3, 32, 32), labels=np.asarray(labels))


@pytest.fixture(scope="module")
def zoo(tiny):
    import classwise as cw
    from classwise.attacks import AutoAttackSpec

    root, images, labels = tiny.root, tiny.images, tiny.labels
    models = write_robustbench_standins(root / "models", MODELS, images, labels)
    # the "published" numbers: what these weights give on the first NL test images, from the in-memory models:
    # Wong2020Fast's clean and robust, Addepalli's clean and a robust accuracy of 100% (wrong: to be flagged),
    # Sehwag's clean and no robust number (not every JSON has one)
    x = torch.as_tensor(images).float() / 255
    with torch.no_grad():
        full_clean = {name: (m(x).argmax(1).numpy() == np.asarray(labels)) for name, m in models.items()}
    published = {name: {"clean": float(right[:NL].mean())} for name, right in full_clean.items()}
    spec = AutoAttackSpec(eps=8 / 255, version="custom", attacks=("apgd-ce",), iterations=2)
    res = cw.evaluate(models["Wong2020Fast"], (torch.as_tensor(images[:NL]), torch.as_tensor(labels[:NL])), [spec],
                      show_progress=False)
    published["Wong2020Fast"]["robust"] = res.accuracy(spec.label)
    published["Addepalli2021Towards_RN18"]["robust"] = 1.0
    published[MISSING] = {"clean": 0.8969, "robust": 0.5953}
    wrong = "Addepalli2021Towards_RN18"
    for name, (arch, extra, venue) in FACTS.items():
        pub = published[name]
        write_model_info(root / "model_info", name, architecture=arch, additional_data=extra, venue=venue,
                         clean_acc=f"{pub['clean'] * 100:.2f}",
                         autoattack_acc=f"{pub['robust'] * 100:.2f}" if "robust" in pub else "")
    study = root / "study"
    t0 = time.perf_counter()
    code, out, err = _run(_zoo_args(root, study, [*MODELS, MISSING], "--leaderboard", str(root / "model_info")))
    return SimpleNamespace(root=root, study=study, published=published, wrong=wrong, code=code, out=out, err=err,
                           images=images, labels=np.asarray(labels),
                           full_clean={n: float(r.mean()) for n, r in full_clean.items()},
                           seconds=time.perf_counter() - t0)


# --- the zoo on stand-ins -----------------------------------------------------------------------------------

@needs_robustbench
def test_zoo_writes_the_per_class_leaderboard_and_one_line_for_the_model_it_cannot_load(zoo):
    assert zoo.code == 1, zoo.err  # a model could not be loaded: said, and the others are reported
    missing = [line for line in zoo.out.splitlines() if MISSING in line and "weights file" in line]
    assert len(missing) == 1, zoo.out
    assert str(zoo.root / "models" / "cifar10" / "Linf" / f"{MISSING}.pt") in missing[0]
    board = pd.read_csv(zoo.study / "leaderboard.csv")
    assert sorted(board["model"]) == sorted(MODELS) and (board["n"] == NL).all()
    per_class = pd.read_csv(zoo.study / "per_class.csv")
    for _, row in board.iterrows():
        for side in ("clean", "robust"):
            pc = per_class[(per_class["model"] == row["model"]) & (per_class["side"] == side)]
            assert len(pc) == 10 and pc["n"].sum() == NL
            acc = pc["accuracy"].to_numpy()  # NaN for a class with no image among the first NL
            assert row[f"{side}_mean"] == pytest.approx(np.nanmean(acc))
            assert row[f"{side}_worst"] == pytest.approx(np.nanmin(acc))
            assert row[f"{side}_worst_class"] in set(pc[pc["accuracy"] == np.nanmin(acc)]["class"])
            assert row[f"{side}_std"] == pytest.approx(np.nanstd(acc))
            assert row[f"{side}_gap"] == pytest.approx(np.nanmax(acc) - np.nanmin(acc))
            assert row[f"{side}_worst_low"] <= row[f"{side}_worst"] <= row[f"{side}_worst_high"]
            # the overall number is the leaderboard's: the share of the NL images
            if side == "clean" or row["model"] == "Wong2020Fast":
                assert row[f"{side}_overall"] == pytest.approx(zoo.published[row["model"]][side])
    pd.testing.assert_frame_equal(pd.read_parquet(zoo.study / "leaderboard.parquet"), board, check_dtype=False)
    assert board["robust_mean"].is_monotonic_decreasing
    # the first NL test images in order, each model its own run
    runs = [json.loads(p.read_text()) for p in sorted((zoo.study / "runs").glob("*/eval.json"))]
    assert len(runs) == 3 and all(r["labels"] == zoo.labels[:NL].tolist() for r in runs)


@needs_robustbench
def test_the_check_against_the_published_numbers_flags_the_one_that_differs(zoo):
    comp = pd.read_csv(zoo.study / "comparison.csv")
    flags = {(r["model"], r["side"]): r["check"] for _, r in comp.iterrows()}
    assert flags.pop((zoo.wrong, "robust")) == "DIFFERS"
    assert flags.pop(("Sehwag2021Proxy_R18", "robust")) == "no published number"
    assert set(flags.values()) == {"matches"}, flags
    differs = comp[comp["check"] == "DIFFERS"].iloc[0]
    assert differs["published"] == 100 and differs["high"] < 100
    assert differs["difference"] == pytest.approx(differs["ours"] - 100)
    assert f"{zoo.wrong}: robust accuracy" in zoo.out and "DIFFERS beyond our 95% interval" in zoo.out
    assert "4 of 5 published numbers lie within our 95% interval" in zoo.out


@needs_robustbench
def test_the_frontier_and_the_agreement_across_the_zoo(zoo):
    from classwise.zoo.agreement import top_k
    from classwise.zoo.frontier import on_frontier

    board = pd.read_csv(zoo.study / "leaderboard.csv")
    summary = json.loads((zoo.study / "zoo.json").read_text())
    for side in ("clean", "robust"):
        m, w = board[f"{side}_mean"].to_numpy(), board[f"{side}_worst"].to_numpy()
        undominated = [board["model"][i] for i in range(len(board)) if not any(
            m[j] >= m[i] and w[j] >= w[i] and (m[j] > m[i] or w[j] > w[i]) for j in range(len(m)))]
        assert sorted(summary["frontier"][side]) == sorted(undominated)
        assert on_frontier(m, w).sum() == len(undominated)
    assert (zoo.study / "figures" / "frontier.png").stat().st_size > 10_000
    per_class = pd.read_csv(zoo.study / "per_class.csv")
    k = top_k(10)
    for side, entry in summary["agreement"]["sides"].items():
        assert 0 <= entry["kendall_w"]["w"] <= 1 and entry["kendall_w"]["m"] == 3
        for cls in entry["always_weak"]:  # among the k weakest of every model, by its own per-class table
            for model in MODELS:
                pc = per_class[(per_class["model"] == model) & (per_class["side"] == side)]
                assert (pc["accuracy"] < pc[pc["class"] == cls]["accuracy"].iloc[0]).sum() < k
        assert set(entry["factors"]) == {"architecture", "extra data", "year"}
        for factor in entry["factors"].values():  # one pair shares each level: (Wong, Addepalli) no extra data,
            assert factor["n_within"] == 1 and factor["n_across"] == 2  # (Addepalli, Sehwag) ResNet-18 and 2022
            assert factor["depends"] == (factor["within"] - factor["across"] >= 0.1)
        extra = entry["factors"]["extra data"]
        assert {h["level"]: h["models"] for h in extra["by_level"]} == {"extra data": 1, "no extra data": 2}
        sehwag = per_class[(per_class["model"] == "Sehwag2021Proxy_R18") & (per_class["side"] == side)]
        level = next(h for h in extra["by_level"] if h["level"] == "extra data")
        assert level["mean"] == pytest.approx(sehwag["accuracy"].mean())  # by how much: its class mean
    answers = " ".join(summary["answers"])
    assert "Kendall's W" in answers and "the extra data" in answers and "By how much" in answers


@needs_robustbench
def test_the_html_page_is_self_contained_sortable_and_flags_the_mismatch(zoo):
    page = (zoo.study / "leaderboard.html").read_text()
    assert all(m in page for m in MODELS) and MISSING in page
    assert page.count("<table class='sortable'>") >= 2 and "addEventListener('click'" in page
    assert "data:image/png;base64," in page and "src=\"http" not in page and "<link" not in page
    flagged = [row for row in page.split("<tr") if row.startswith(" class=flag")]
    assert len(flagged) == 2 and all(zoo.wrong in row for row in flagged)  # its leaderboard and comparison rows
    assert "<details><summary>Wong2020Fast</summary>" in page


@needs_robustbench
def test_a_finished_zoo_evaluates_nothing_again(zoo):
    before = (zoo.study / "leaderboard.csv").read_text()
    t0 = time.perf_counter()
    code, out, err = _run(_zoo_args(zoo.root, zoo.study, MODELS, "--leaderboard", str(zoo.root / "model_info"),
                                    quiet=False))
    assert code == 0, err
    assert "3 models, 3 finished, 0 to evaluate" in out + err
    assert (zoo.study / "leaderboard.csv").read_text() == before
    assert time.perf_counter() - t0 < zoo.seconds / 2


@needs_robustbench
def test_explain_on_the_zoo_names_models_and_tests_architecture_extra_data_and_year(zoo, tmp_path):
    code, out, err = _run(["explain", str(zoo.study), "--out", str(tmp_path / "explain"), "--quiet"])
    assert code == 0, err
    ex = json.loads((tmp_path / "explain" / "explain.json").read_text())
    assert sorted(r["name"] for r in ex["runs"]) == sorted(MODELS)
    factors = ex["agreement"]["factors"]
    assert {"architecture", "extra data", "year"} <= set(factors)
    assert factors["year"][[r["name"] for r in ex["runs"]].index("Addepalli2021Towards_RN18")] == "2022"


@needs_robustbench
def test_evaluate_loads_a_zoo_model_by_name(zoo, tmp_path):
    out = tmp_path / "eval"
    code, _, err = _run(["evaluate", "--robustbench", "Wong2020Fast", "--dataset", "cifar10", "--threat", "linf",
                         "--model-dir", str(zoo.root / "models"), "--data-dir", str(zoo.root / "data"),
                         "--attack", "fgsm", "--no-sanity", "--quiet", "--out", str(out)])
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["checkpoint_format"] == "robustbench" and results["arch"] == "Wong2020Fast"
    assert results["clean"]["overall"] == pytest.approx(zoo.full_clean["Wong2020Fast"])  # all 30 images
    assert results["attack"]["eps"] == pytest.approx(8 / 255) and results["attack"]["norm"] == "linf"


# --- models that cannot be had, names that do not exist -----------------------------------------------------

@needs_robustbench
def test_a_model_that_cannot_be_had_is_one_line_naming_its_file(zoo, tmp_path, monkeypatch):
    from classwise.zoo import load_model
    from classwise.zoo.package import robustbench

    path = tmp_path / "cifar10" / "Linf" / f"{MISSING}.pt"
    with pytest.raises(ClasswiseError, match="no weights file") as exc:
        load_model(MISSING, "cifar10", "linf", tmp_path, download=False)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)

    def offline(gdrive_id, fname_save):
        raise ConnectionError("Failed to resolve 'drive.google.com'")

    monkeypatch.setattr(robustbench().utils, "download_gdrive_new", offline)  # no network, as on this machine
    with pytest.raises(ClasswiseError, match="download failed") as exc:
        load_model(MISSING, "cifar10", "linf", tmp_path)
    assert str(path) in str(exc.value) and not path.exists()
    code, _, err = _run(["evaluate", "--robustbench", MISSING, "--dataset", "cifar10", "--model-dir", str(tmp_path),
                         "--data-dir", str(zoo.root / "data"), "--quiet"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(path) in err

    path.write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(ClasswiseError, match="does not load"):
        load_model(MISSING, "cifar10", "linf", tmp_path)
    with pytest.raises(ClasswiseError, match="did you mean Wong2020Fast"):
        load_model("Wong2020Fst", "cifar10", "linf", tmp_path)


@needs_robustbench
@pytest.mark.parametrize(("args", "message"), [
    (["--models", "Wong2020Fst"], "did you mean Wong2020Fast"),
    (["--threat", "l3"], "unknown threat model 'l3'"),
    (["--dataset", "mnist"], "RobustBench has no data set 'mnist'"),
    (["--dataset", "cifar100", "--threat", "l2"], "no l2 leaderboard for cifar100"),
    (["--architecture", "WideResNet-28-10"], "--architecture filters on the leaderboard's model_info"),
])
def test_bad_zoo_input_is_one_line_before_any_work(tmp_path, args, message):
    code, _, err = _run(["zoo", "--out", str(tmp_path / "study"), "--no-fetch", *args])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "study" / "study.db").exists()


# --- the corruption leaderboard; a killed zoo resumes; Slurm ------------------------------------------------

CMODELS = ["Hendrycks2020AugMix_WRN", "Modas2021PRIMEResNet18"]  # WideResNet-40-2, ResNet-18
CORRUPT = ["--corruptions", "fog,contrast", "--severities", "2"]


def _czoo_args(root, out, *extra, quiet=True):
    return ["zoo", "--models", ",".join(CMODELS), "--dataset", "cifar10", "--threat", "corruptions", "--n", str(N),
            *CORRUPT, "--model-dir", str(root / "models"), "--data-dir", str(root / "data"), "--leaderboard",
            str(root / "model_info"), "--out", str(out), "--no-fetch", "--no-download", "--no-figures", *extra] + (
            ["--quiet"] if quiet else [])


@pytest.fixture(scope="module")
def czoo(tiny):
    import classwise as cw
    from classwise.corruptions import corruption_specs

    models = write_robustbench_standins(tiny.root / "models", CMODELS, tiny.images, tiny.labels, threat="corruptions")
    specs = corruption_specs(["fog", "contrast"], [2])
    expected = {}
    for name, model in models.items():
        res = cw.evaluate(model, (torch.as_tensor(tiny.images[:N]), torch.as_tensor(tiny.labels[:N])), specs,
                          show_progress=False)
        per_key = np.vstack([res.per_class(sp.label)["accuracy"].to_numpy() for sp in specs])  # keys x classes
        expected[name] = {"clean": res.accuracy("clean"), "per_class": np.nanmean(per_key, 0),
                          "corrupted": float(np.mean([res.accuracy(sp.label) for sp in specs]))}
        write_model_info(tiny.root / "model_info", name, threat="corruptions", eps=None, venue="ICLR 2020",
                         clean_acc=f"{expected[name]['clean'] * 100:.2f}",
                         corruptions_acc=f"{expected[name]['corrupted'] * 100:.2f}")
    study = tiny.root / "cstudy"
    code, out, err = _run(_czoo_args(tiny.root, study))
    return SimpleNamespace(root=tiny.root, study=study, expected=expected, code=code, err=err)


@needs_robustbench
def test_the_corruption_leaderboard_per_class(czoo):
    assert czoo.code == 0, czoo.err
    board = pd.read_csv(czoo.study / "leaderboard.csv").set_index("model")
    for name, exp in czoo.expected.items():
        assert board.loc[name, "corrupted_overall"] == pytest.approx(exp["corrupted"])
        assert board.loc[name, "corrupted_mean"] == pytest.approx(np.nanmean(exp["per_class"]))  # over classes
        assert board.loc[name, "corrupted_worst"] == pytest.approx(np.nanmin(exp["per_class"]))  # of the key mean
    assert set(pd.read_csv(czoo.study / "comparison.csv")["check"]) == {"matches"}
    departures = json.loads((czoo.study / "zoo.json").read_text())["departures"]
    assert any("2 corruptions, not the 15" in d for d in departures)
    assert any("severities 2, not 1-5" in d for d in departures)
    assert any("made in memory" in d for d in departures)


@needs_robustbench
def test_a_killed_zoo_leaves_nothing_half_written_and_resumes_to_the_same_numbers(czoo, tmp_path):
    from classwise.study.store import Store

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "classwise", *_czoo_args(czoo.root, out, quiet=False)]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=env)
    killed, deadline = None, time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
        try:
            status = Store(out / "study.db").status() if (out / "study.db").exists() else {}
        except Exception:  # noqa: BLE001 - the database is being created
            continue
        running = [r for r, s in status.items() if s == "running"]
        if "finished" in status.values() and running:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = running[0]
            break
    proc.wait()
    assert killed is not None, "the kill must land while the second model is evaluated"
    store = Store(out / "study.db")
    assert store.status()[killed] == "running" and killed not in set(store.tidy()["run"])
    for p in (out / "runs").glob("*/eval.json"):
        json.loads(p.read_text())  # whole, or not there
    assert not (out / "leaderboard.csv").exists() and not (out / "zoo.json").exists()

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 models, 1 finished, 1 to evaluate" in proc.stdout + proc.stderr
    runs = store.runs_table().set_index("id")
    assert (runs["status"] == "finished").all() and runs.loc[killed, "attempts"] == 2
    assert sorted(runs["attempts"]) == [1, 2] and not list(out.rglob("*.tmp"))
    # the same models and settings give the same run ids, and the same per-class numbers as an unbroken run
    pd.testing.assert_frame_equal(store.tidy(), Store(czoo.study / "study.db").tidy())
    assert (pd.read_csv(out / "leaderboard.csv")["corrupted_check"] == "matches").all()


@needs_robustbench
@pytest.mark.skipif(bool(missing()) or os.geteuid() != 0,
                    reason=f"needs root and Debian's slurm-wlm, slurmdbd, munge, mariadb-server (.ci/run installs "
                           f"them); missing: {missing()}")
def test_the_zoo_on_a_real_slurm_cluster_one_model_a_job(czoo, tmp_path):
    pytest.importorskip("submitit")
    from classwise.study.store import Store

    out = tmp_path / "study"
    with slurm_cluster(tmp_path / "cluster") as env:
        proc = subprocess.run([sys.executable, "-m", "classwise", *_czoo_args(
            czoo.root, out, "--executor", "slurm", "--max-parallel", "2", "--cpus", "1", "--time", "10",
            quiet=False)], capture_output=True, text=True, timeout=900,
            env={**env, "OMP_NUM_THREADS": str(torch.get_num_threads())})
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        assert "submitted 2 Slurm jobs" in proc.stdout + proc.stderr
        # the zoo returns once the store holds every model; Slurm records a task's end a moment later
        for _ in range(60):
            sacct = subprocess.run(["sacct", "-n", "-X", "-o", "JobName%40,State"], capture_output=True, text=True,
                                   env=env).stdout
            if not any(state in sacct for state in ("PENDING", "RUNNING", "COMPLETING")):
                break
            time.sleep(0.5)
    tasks = [line.split() for line in sacct.splitlines() if "classwise-study" in line]
    assert len(tasks) == 2 and all(t[-1] == "COMPLETED" for t in tasks)  # one array task a model
    pd.testing.assert_frame_equal(Store(out / "study.db").tidy(), Store(czoo.study / "study.db").tidy())
    assert sorted(pd.read_csv(out / "leaderboard.csv")["model"]) == sorted(CMODELS)


# --- pieces without the extra -------------------------------------------------------------------------------

def test_the_leaderboard_protocol_and_its_departures():
    from classwise.zoo import ZooSettings
    from classwise.zoo.protocol import zoo_run_id

    s = ZooSettings()
    assert s.images == 10_000 and s.radius == pytest.approx(8 / 255) and s.departures() == []
    assert s.autoattack().version == "standard" and s.robust_label == "aa"
    assert ZooSettings(dataset="imagenet").radius == pytest.approx(4 / 255)
    assert ZooSettings(threat="L2").radius == 0.5 and ZooSettings(threat="L2").robust_label == "aa-l2"
    quick = ZooSettings(n=100, attacks=("apgd-ce",), version="custom", iterations=2)
    assert len(quick.departures()) == 3
    assert ZooSettings(threat="corruptions").robust_label == "corrupted"
    assert zoo_run_id("A", s) == zoo_run_id("A", ZooSettings(eps=8 / 255)) != zoo_run_id("B", s)
    assert zoo_run_id("A", s) != zoo_run_id("A", ZooSettings(n=100))


def test_model_info_is_read_as_the_leaderboard_writes_it(tmp_path):
    from classwise.zoo.info import InfoSource

    write_model_info(tmp_path, "M", venue="GitHub,<br>Oct 2019", architecture="ResNet-50", additional_data=True,
                     clean_acc="87.03", autoattack_acc="49.25", reported="")
    write_model_info(tmp_path, "C", threat="corruptions", eps=None, clean_acc="95.08", corruptions_acc="88.82",
                     venue="N/A")
    info = InfoSource("cifar10", "linf", leaderboard=tmp_path, fetch=False).get("M")
    assert (info.clean_acc, info.robust_acc, info.year, info.additional_data) == (0.8703, 0.4925, 2019, True)
    corr = InfoSource("cifar10", "corruptions", leaderboard=tmp_path, fetch=False).get("C")
    assert corr.robust_acc == pytest.approx(0.8882) and corr.year is None
    assert InfoSource("cifar10", "linf", leaderboard=tmp_path, fetch=False).get("unknown") is None


def test_check_and_frontier():
    from classwise.zoo.frontier import on_frontier
    from classwise.zoo.leaderboard import check

    assert check(0.60, 0.39, 0.78, 0.60) == "matches" and check(0.60, 0.39, 0.78, 0.80) == "DIFFERS"
    assert check(0.60, 0.39, 0.78, None) == "no published number"
    # (mean, worst): b dominates a; c has the best worst class; d the best mean; e is NaN
    mask = on_frontier([0.5, 0.6, 0.55, 0.7, np.nan], [0.2, 0.3, 0.4, 0.1, 0.5])
    assert mask.tolist() == [False, True, True, True, False]


def test_a_robustbench_overwritten_by_torchattacks_is_refused_with_the_fix(tmp_path, monkeypatch):
    import base64
    import hashlib
    from importlib import metadata

    from classwise.zoo import package

    good, bad = tmp_path / "utils.py", tmp_path / "cifar10.py"
    good.write_text("def load_model(): ...\n")
    bad.write_text("# torchattacks' old copy\n")

    class Recorded:  # what importlib.metadata lists for an installed file
        def __init__(self, name, path, content):
            self.name, self.path = name, path
            self.hash = SimpleNamespace(mode="sha256", value=base64.urlsafe_b64encode(
                hashlib.sha256(content.encode()).digest()).rstrip(b"=").decode())

        def __str__(self):
            return self.name

        def locate(self):
            return self.path

    monkeypatch.setattr(metadata, "files", lambda _name: [
        Recorded("robustbench/utils.py", good, "def load_model(): ...\n"),
        Recorded("robustbench/model_zoo/cifar10.py", bad, "# robustbench 1.1.1's own\n")])
    assert package._overwritten() == [str(bad)]
    monkeypatch.setattr(package, "available", lambda: True)
    package.robustbench.cache_clear()
    try:
        with pytest.raises(ClasswiseError, match="torchattacks 3.5.1 ships a stray robustbench/.*force-reinstall"):
            package.robustbench()
    finally:
        package.robustbench.cache_clear()


def test_model_info_is_fetched_once_cached_and_an_offline_network_is_asked_once(tmp_path, monkeypatch):
    import http.server
    import threading

    from classwise.zoo import info

    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            served.append(self.path)
            if self.path.endswith("/M.json"):
                body = json.dumps({"clean_acc": "90.00", "autoattack_acc": "60.00", "venue": "ICML 2023"}).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(info, "RAW_URL", f"http://127.0.0.1:{server.server_port}/{{dataset}}/{{threat}}/{{name}}.json")
        source = info.InfoSource("cifar10", "linf", cache_dir=tmp_path / "cache")
        got = source.get("M")
        assert (got.clean_acc, got.robust_acc, got.year) == (0.9, 0.6, 2023) and got.source.startswith("http://")
        assert source.get("absent") is None and source.offline_reason is None  # a 404: not on the leaderboard
        cached = info.InfoSource("cifar10", "linf", cache_dir=tmp_path / "cache", fetch=False).get("M")
        assert cached.clean_acc == 0.9 and cached.source == str(tmp_path / "cache" / "cifar10" / "Linf" / "M.json")
        assert served == ["/cifar10/Linf/M.json", "/cifar10/Linf/absent.json"]
    finally:
        server.shutdown()
        server.server_close()
    offline = info.InfoSource("cifar10", "linf", cache_dir=tmp_path / "other", timeout=2)  # the server is gone
    assert offline.get("M") is None and offline.offline_reason is not None
    monkeypatch.setattr(info.urllib.request, "urlopen", lambda *a, **k: pytest.fail("asked the network twice"))
    assert offline.get("N") is None


def test_agreement_says_when_nothing_ranks_the_classes_and_leaves_out_classes_without_images():
    from classwise.zoo.agreement import zoo_agreement
    from classwise.zoo.info import ModelInfo

    def info(arch, extra, year):
        return ModelInfo("m", "cifar10", "linf", None, None, arch, extra, None, year, None, "test")

    clean = np.array([[0.1, 0.5, 0.9, np.nan], [0.2, 0.4, 0.8, np.nan], [0.3, 0.6, 0.7, np.nan]])
    infos = {"a": info("R", False, 2020), "b": info("R", True, 2021), "c": info("W", False, None)}
    out = zoo_agreement({"clean": clean, "robust": np.zeros((3, 4))}, ["a", "b", "c"], ["w", "x", "y", "z"], infos)
    c = out["sides"]["clean"]
    assert c["classes_left_out"] == ["z"] and c["kendall_w"]["w"] == pytest.approx(1.0)
    assert c["always_weak"] == ["w", "x", "y"]  # k = 3 of the 3 classes left
    assert set(c["factors"]) == {"architecture", "extra data", "year"}
    assert c["factors"]["year"]["depends"] is None and c["factors"]["year"]["n_across"] == 1  # two models say it
    assert c["factors"]["architecture"]["n_within"] == 1 and c["factors"]["extra data"]["n_within"] == 1
    assert out["sides"]["robust"]["factors"] == {}
    assert any("robust weak classes across 3 models: undefined" in a for a in out["answers"])


def test_a_job_that_ended_without_finishing_its_model_is_a_failure(tmp_path):
    """A Slurm array task whose Python raised before the store heard of it still ends COMPLETED:
    the model is reported failed with the executor's line, not left out of the board in silence."""
    from classwise.study.store import Store
    from classwise.zoo.sweep import Selection, failed_models

    store = Store(tmp_path / "study.db")
    store.register({"r1": {"robustbench": "A"}, "r2": {"robustbench": "B"}, "r3": {"robustbench": "C"}})
    store.start("r1")
    store.fail("r2", "CUDA out of memory")
    sel = Selection(runs={"A": "r1", "B": "r2", "C": "r3"}, unavailable={"D": "no weights"})
    assert failed_models(sel, store) == {"D": "no weights", "B": "CUDA out of memory"}  # a report of what is stored
    assert failed_models(sel, store, {"r1": "database is locked"}) == {
        "D": "no weights", "B": "CUDA out of memory", "A": "database is locked"}
