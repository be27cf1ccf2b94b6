"""What the commands leave and say: a finished study, run or evaluation is replaced only with
--overwrite and re-reported with --resume; the study's last lines name each arm's figures and
count its arms and seeds; every accuracy is rounded once, in one place; --quiet is quiet;
`classwise datasets` piped prints whole paths; a tree of small images is read at their size."""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classwise.cli import main
from classwise.rounding import percent, plural, points

TINY = ["--epochs", "1", "--train-limit", "100", "--eval-subset", "20", "--eval-steps", "1", "--test-limit", "50",
        "--test-steps", "1"]
STUDY = ["study", "--dataset", "digits", "--preset", "smoke", *TINY, "--no-sanity"]


def _attempts(out: Path) -> dict:
    with sqlite3.connect(out / "study.db") as db:
        return dict(db.execute("SELECT id, attempts FROM runs").fetchall())


def test_a_finished_study_is_rereported_with_resume_and_replaced_with_overwrite(tmp_path, capsys):
    out = tmp_path / "study"
    assert main([*STUDY, "--methods", "standard,fgsm-rs", "--no-figures", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    # the last lines: one per arm with the figures a study is quoted by, as results.json holds them
    for arm in ("standard", "fgsm-rs"):
        clean, robust = results["models"][arm]["clean"], results["models"][arm]["robust"]
        line = next(ln for ln in printed.splitlines() if ln.startswith(f"{arm}: clean overall"))
        assert line == (f"{arm}: clean overall {percent(clean['overall'])}, class mean {percent(clean['mean'])}, "
                        f"worst class '{clean['worst_class']}' {percent(clean['worst'])}; {results['attack']} overall "
                        f"{percent(robust['overall'])}, class mean {percent(robust['mean'])}, worst class "
                        f"'{robust['worst_class']}' {percent(robust['worst'])}")
    # the answers count arms and seeds, and pairs in the singular when there is one
    assert "across 2 arms, 1 seed:" in printed and "across 2 runs" not in printed
    assert " 1 pairs" not in printed and "over 1 pair." in printed
    stamp = (out / "standard" / "eval.json").stat().st_ino, (out / "standard" / "model.pt").stat().st_mtime_ns
    attempts = _attempts(out)

    assert main([*STUDY, "--methods", "standard,fgsm-rs", "--no-figures", "--resume", "--out", str(out)]) == 0
    assert _attempts(out) == attempts  # re-reported: no run started again
    assert ((out / "standard" / "eval.json").stat().st_ino, (out / "standard" / "model.pt").stat().st_mtime_ns) == stamp
    assert "finished, its test evaluation is reused" in capsys.readouterr().err

    # --overwrite replaces the study (its arm folders as its config names them); --quiet says nothing
    (out / "notes.txt").write_text("mine")
    assert main([*STUDY, "--methods", "standard", "--no-figures", "--overwrite", "--quiet", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert not (out / "fgsm-rs").exists() and (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "results.json").read_text())["arms"] == ["standard"]
    assert (out / "standard" / "model.pt").stat().st_mtime_ns != stamp[1]
    assert list(_attempts(out).values()) == [1]


def test_train_and_evaluate_replace_their_results_only_with_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    train = ["train", "--dataset", "digits", *TINY, "--quiet", "--out", str(run)]
    assert main(train) == 0
    before = (run / "model.pt").read_bytes(), (run / "model.pt").stat().st_mtime_ns
    assert main(train) == 2 and "already holds a finished training run" in capsys.readouterr().err
    assert ((run / "model.pt").read_bytes(), (run / "model.pt").stat().st_mtime_ns) == before
    assert main([*train, "--overwrite"]) == 0
    assert (run / "model.pt").stat().st_mtime_ns != before[1]

    ev = tmp_path / "eval"
    evaluate = ["evaluate", "--dataset", "digits", "--checkpoint", str(run / "model.pt"), "--limit", "40", "--steps",
                "1", "--no-sanity", "--quiet", "--out", str(ev)]
    assert main([*evaluate, "--eps-curve", "0.05,0.1"]) == 0 and (ev / "eps_curve.json").is_file()
    kept = (ev / "eval.json").read_bytes()
    err = capsys.readouterr().err
    assert main(evaluate) == 2
    err = capsys.readouterr().err
    assert "already holds a finished evaluation; rerun with --overwrite" in err and "--resume" not in err
    assert (ev / "eval.json").read_bytes() == kept and (ev / "eps_curve.json").is_file()
    assert main([*evaluate, "--overwrite"]) == 0
    assert not (ev / "eps_curve.json").exists()  # the old evaluation's files went with it
    assert json.loads((ev / "eval.json").read_text())["labels"] == json.loads(kept)["labels"]


def test_one_number_one_rounding():
    """0.0735 is 7.4 points wherever it is shown: the sentence, the summary table, the terminal table."""
    import pandas as pd

    from classwise.report.sentences import change_sentence
    from classwise.report.study_text import interval_text
    from classwise.report.table import console, print_per_class

    assert f"{0.0735 * 100:.1f}" != f"{np.round(0.0735 * 100, 1)}"  # what it replaces: two roundings, two answers
    assert points(0.0735) == "7.4" and percent(0.0735) == "7.4%" and points(-0.0735, sign=True) == "-7.4"
    assert points(0.00049, sign=True) == "+0.0" and points(-0.0004) == "0.0" and points(float("nan")) == "-"
    assert change_sentence("std", 0.0, 0.0735, 0.0735, 0.0735).startswith("widens: std 0.0 → 7.4 points, "
                                                                           "difference +7.4 [+7.4, +7.4]")
    assert interval_text(0.0735, (0.0735, 0.0735)) == "7.4 [7.4, 7.4]"
    with console.capture() as cap:
        print_per_class(pd.DataFrame({"class": ["a"], "acc": [0.0735]}), "t")
    assert "7.4" in cap.get() and "7.3" not in cap.get()
    assert plural(1, "pair") == "1 pair" and plural(2, "seed") == "2 seeds"


def test_the_runs_of_a_study_are_counted_as_arms_and_seeds():
    from classwise.analysis.explain import design
    from classwise.report.sentences import runs_text

    study = [{"method": m, "seed": s, "arch": "x"} for m in ("standard", "fgsm-rs") for s in (0,)]
    assert runs_text(design(study)) == "2 arms, 1 seed"
    assert runs_text(design([{"method": m, "seed": s} for m in "ab" for s in (0, 1, 2)])) == "2 arms, 3 seeds"
    assert runs_text(design([{"method": "pgd", "seed": 0, "arch": a} for a in ("x", "y", "z")])) == "3 runs"


def test_datasets_piped_prints_whole_paths(tmp_path, capsys):
    from datafiles import write_mnist_like

    root = tmp_path / ("a-long-folder-name-that-no-terminal-table-would-show-whole" * 2)
    write_mnist_like(root / "mnist")
    assert main(["datasets", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if ln.startswith("mnist\t"))
    assert row.split("\t")[1:3] == ["found", str(root / "mnist")]
    assert "…" not in out


def test_a_tree_of_small_images_is_read_at_their_size(tmp_path):
    from classwise.data import load_dataset

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("a", "b", "c"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(4):
                image = rng.integers(0, 255, (28, 28, 3), dtype=np.uint8)
                Image.fromarray(image).save(tmp_path / split / c / f"{i}.png")
    splits = load_dataset("imagefolder", tmp_path)
    assert splits.train.shape == (3, 28, 28) and splits.test.shape == (3, 28, 28)  # not blown up to 224
    assert splits.test.images_at([0]).shape == (1, 3, 28, 28)
    Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "val" / "a" / "odd.png")
    assert load_dataset("imagefolder", tmp_path).test.shape == (3, 224, 224)  # mixed sizes: the standard 224


@pytest.mark.parametrize("verb", ["study", "train"])
def test_forced_no_op_settings_are_warnings(tmp_path, capsys, verb):
    """A DAFA warm-up past the last epoch is an error without --force (see test_bad_input) and
    a warning with it."""
    argv = ([*STUDY, "--methods", "standard,dafa", "--no-figures"] if verb == "study" else
            ["train", "--dataset", "digits", *TINY, "--method", "dafa"])
    assert main([*argv, "--dafa-warmup", "5", "--force", "--out", str(tmp_path / "r")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: dafa: the class weights are set after epoch 5" in err and "(run anyway: --force)" in err
