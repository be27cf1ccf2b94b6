"""Every bad input, on every command and the Python API: exit code 2 (API: a ClasswiseError),
exactly one line on stderr that says what was wrong, no traceback, and not one new file or
changed byte (the sha256 of every file) anywhere in the workspace, which holds a finished run,
study, sweep and evaluation.

Set CLASSWISE_BAD_INPUT_TABLE=file.json to collect every case's message (the issue's table)."""

import hashlib
import json
import math
import os
import pickle
import shutil
import sqlite3
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import write_cifar10, write_image_tree

from classwise.cli import main
from classwise.errors import ClasswiseError

TINY = ["--epochs", "1", "--train-limit", "100", "--eval-subset", "20", "--eval-steps", "1", "--test-limit", "50",
        "--test-steps", "1", "--quiet"]
STUDY = ["study", "--dataset", "digits", "--preset", "smoke", "--methods", "standard", *TINY]
GOOD_RUN = "runs/good"
GOOD_STUDY = "runs/goodstudy"
GOOD_EVAL = "runs/goodeval"
GRID = '''name = "{name}"
[run]
dataset = "digits"
epochs = 1
train_limit = 200
eval_subset = 50
eval_steps = 1
test_limit = 100
test_steps = 1
{extra}
'''
USER_MODELS = '''
import torch
from torch import nn


def good(num_classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))


def wrong_width(num_classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 7))


def wrong_input():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))


def raises(num_classes=10):
    raise ValueError("no such layer size")


def returns_none(num_classes=10):
    return None


def any_input(num_classes=10):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, num_classes))
'''


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims width x height pixels (PIL checks the size before decoding)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def _inputs(ws: Path) -> None:
    inp = ws / "inputs"
    inp.mkdir()
    (inp / "afile").write_text("not a folder\n")
    (inp / "code").mkdir()
    (inp / "code" / "usermodels.py").write_text(USER_MODELS)
    (inp / "code" / "broken.py").write_text("def good(:\n")
    # checkpoints
    good = torch.load(ws / GOOD_RUN / "model.pt", weights_only=True)
    state = dict(good["state_dict"])
    head = [k for k, v in state.items() if v.ndim == 2][-1]
    wrong = dict(state)
    wrong[head] = torch.zeros(5, state[head].shape[1])
    wrong[head[: -len("weight")] + "bias"] = torch.zeros(5)
    torch.save({**good, "state_dict": wrong}, inp / "wrong_head.pt")
    nan = {k: v.clone() for k, v in state.items()}
    nan[head][0, 0] = float("nan")
    torch.save({**good, "state_dict": nan}, inp / "nan.pt")
    raw = (ws / GOOD_RUN / "model.pt").read_bytes()
    (inp / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (inp / "random.pt").write_bytes(bytes(range(256)) * 8)
    (inp / "page.pt").write_text("<!DOCTYPE html><html><body>Not Found</body></html>")
    (inp / "evil.pt").write_bytes(pickle.dumps(_Evil()))
    (inp / "empty.pt").write_bytes(b"")
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5))
    torch.save(lin.state_dict(), inp / "custom_wrong.pt")
    lin10 = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    sd = lin10.state_dict()
    sd["1.weight"][0, 0] = float("inf")
    torch.save({"state_dict": sd}, inp / "custom_inf.pt")
    # data
    folder, _, _ = write_cifar10(inp / "cifar_meta", per_batch=10, n_test=10)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"num_cases_per_batch": 10}, fh, protocol=2)
    folder, _, batches = write_cifar10(inp / "cifar_labels", per_batch=10, n_test=10)
    with open(folder / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": batches["data_batch_3"][0]}, fh, protocol=2)
    write_image_tree(inp / "flat", ["cat", "dog"], per_class=1, size=(40, 40))
    (inp / "bomb" / "cat").mkdir(parents=True)
    _png_header_only(inp / "bomb" / "cat" / "huge.png", 20000, 20000)
    # study configs
    (inp / "latin1.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    (inp / "syntax.toml").write_text('name = "x\n')
    (inp / "ok.toml").write_text(GRID.format(name="ok", extra=""))
    (inp / "unknown_key.toml").write_text(GRID.format(name="u", extra="learning_rate = 0.1"))
    (inp / "bad_method.toml").write_text(GRID.format(name="m", extra='[grid]\nmethod = ["standard", "nosuch"]'))
    (inp / "bad_arch.toml").write_text(GRID.format(name="a", extra='[grid]\narch = ["mnist-cnn", "resnet-9000"]'))
    (inp / "bad_dataset.toml").write_text(GRID.format(name="d", extra='[grid]\ndataset = ["digits", "cifar11"]'))
    (inp / "bad_value.toml").write_text(GRID.format(name="v", extra='[grid]\nlr = [0.1, -1.0]'))
    (inp / "traversal.toml").write_text(GRID.format(name="../../escaped", extra=""))
    (inp / "inf_param.toml").write_text(GRID.format(name="i", extra='method = "critical"\nmethod_params = '
                                                                   '{critical = "3", critical_weight = inf}'))
    (inp / "zebra.toml").write_text(GRID.format(name="z", extra='method = "critical"\nmethod_params = '
                                                                '{critical = "zebra"}'))
    (inp / "absolute.toml").write_text(GRID.format(name=str(ws.parent / "escaped"), extra=""))
    # study databases
    (inp / "garbage.db").write_bytes(b"this is not sqlite at all" * 100)
    db = (ws / "runs" / "goodsweep" / "study.db").read_bytes()
    (inp / "truncated.db").write_bytes(db[: max(4096, len(db) // 3)])
    con = sqlite3.connect(inp / "foreign.db")
    con.execute("CREATE TABLE runs (name TEXT, value REAL)")
    con.execute("INSERT INTO runs VALUES ('a', 1.0)")
    con.commit()
    con.close()
    _stored_files(ws, inp)


def _stored_files(ws: Path, inp: Path) -> None:
    """Stored files gone wrong: eval.json records, a study whose evaluation is damaged, CIFAR-10-C
    .npy files, constructed-feature chunks, frost folders."""
    good = json.loads((ws / GOOD_RUN / "eval.json").read_text())
    c = len(good["classes"])
    bad_evals = {
        "list": [1, 2, 3],
        "not_json": None,
        "float_pred": {**good, "clean_pred": [0.5, *good["clean_pred"][1:]]},
        "label_out": {**good, "labels": [c + 3, *good["labels"][1:]]},
        "negative": {**good, "adv_pred": {k: [-1, *v[1:]] for k, v in good["adv_pred"].items()}},
        "lengths": {**good, "clean_pred": good["clean_pred"][:-2]},
        "classes_text": {**good, "classes": "0123456789"},
        "no_labels": {k: v for k, v in good.items() if k != "labels"},
        "sums_shape": {**good, "class_sums": {"clean": {"logits": [[0.0, 1.0]]}}},
    }
    for name, record in bad_evals.items():
        (inp / f"eval_{name}").mkdir()
        text = "{\"classes\": [" if record is None else json.dumps(record)
        (inp / f"eval_{name}" / "eval.json").write_text(text)
    (inp / "otherclasses").mkdir()
    (inp / "otherclasses" / "eval.json").write_text(json.dumps(
        {"classes": ["a", "b", "c"], "labels": [0, 1, 2, 2], "clean_pred": [0, 1, 1, 2], "adv_pred": {}}))
    shutil.copytree(ws / GOOD_STUDY, inp / "damaged_study")
    (inp / "damaged_study" / "standard" / "eval.json").write_text("[]")
    # a CIFAR-10 root whose CIFAR-10-C files are truncated, pickled or of the wrong dtype
    _, _, batches = write_cifar10(inp / "c10c", per_batch=10, n_test=10)
    cc = inp / "c10c" / "CIFAR-10-C"
    cc.mkdir()
    np.save(cc / "labels.npy", np.tile(np.asarray(batches["test_batch"][1], dtype=np.int64), 5))
    np.save(cc / "fog.npy", np.zeros((50, 32, 32, 3), np.uint8))
    (cc / "fog.npy").write_bytes((cc / "fog.npy").read_bytes()[:1000])
    np.save(cc / "contrast.npy", np.array([{"a": 1}] * 50, dtype=object), allow_pickle=True)
    np.save(cc / "brightness.npy", np.zeros((50, 32, 32, 3), np.float32))
    # constructed data sets: a chunk that is a pickle running code; a meta.json that is no JSON
    meta = {"kind": "robust", "source": {"dataset": "digits", "checkpoint": "x.pt", "data_dir": None},
            "params": {"steps": 1, "step_size": 0.1, "eps": None}, "seed": 0, "n": 10, "chunk": 10, "n_chunks": 1,
            "classes": [str(d) for d in range(10)], "shape": [1, 8, 8], "complete": True}
    for name, chunk in (("features_evil", pickle.dumps(_Evil())), ("features_badmeta", b"")):
        (inp / name / "chunks").mkdir(parents=True)
        (inp / name / "meta.json").write_text(json.dumps(meta) if name == "features_evil" else "{not json")
        (inp / name / "chunks" / "00000.pt").write_bytes(chunk)
    planted = {**meta, "kind": "det", "n": 20, "n_chunks": 2,
               "source": {"checkpoint": f"{GOOD_RUN}/model.pt", "dataset": "digits", "data_dir": None, "limit": 20,
                          "method": "standard"},
               "params": {"steps": 1, "step_size": 0.1, "eps": 0.5}, "complete": False}
    (inp / "features_planted" / "chunks").mkdir(parents=True)
    (inp / "features_planted" / "meta.json").write_text(json.dumps(planted))
    (inp / "features_planted" / "chunks" / "00000.pt").write_bytes(pickle.dumps(_Evil()))
    (inp / "emptydir").mkdir()
    (inp / "badfrost").mkdir()
    for f in ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg"):
        (inp / "badfrost" / f).write_text("not an image")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace with a finished run, study and sweep, and every bad input file."""
    root = tmp_path_factory.mktemp("bad_input")
    ws, home = root / "ws", root / "home"
    ws.mkdir()
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ws)
        mp.setenv("HOME", str(home))
        assert main(["train", "--dataset", "digits", *TINY, "--out", GOOD_RUN]) == 0
        assert main([*STUDY, "--out", GOOD_STUDY]) == 0
        (root / "grid.toml").write_text(GRID.format(name="goodsweep", extra=""))
        assert main(["sweep", str(root / "grid.toml"), "--out", "runs/goodsweep", "--quiet"]) == 0
        assert main([*EVAL_GOOD, "--limit", "50", "--steps", "1", "--no-sanity", "--out", GOOD_EVAL]) == 0
        _inputs(ws)
    return ws


I = "inputs/"
EVAL = ["evaluate", "--dataset", "digits", "--quiet"]
EVAL_GOOD = [*EVAL, "--checkpoint", f"{GOOD_RUN}/model.pt"]
USER = f"{I}code/usermodels.py"
TRAIN = ["train", "--dataset", "digits", *TINY]

# (kind, argv, what the message must say)
CLI_CASES = [
    # evaluate: numbers
    ("evaluate --eps 1e999", [*EVAL_GOOD, "--eps", "1e999"], "finite"),
    ("evaluate --eps 300 (linf)", [*EVAL_GOOD, "--eps", "300"], "pixel range"),
    ("evaluate --eps nan", [*EVAL_GOOD, "--eps", "nan"], "eps"),
    ("evaluate --eps -1", [*EVAL_GOOD, "--eps=-1"], ">= 0"),
    ("evaluate --eps abc", [*EVAL_GOOD, "--eps", "abc"], "eps must be"),
    ("evaluate --batch-size 0", [*EVAL_GOOD, "--batch-size", "0"], "at least 1"),
    ("evaluate --batch-size -1", [*EVAL_GOOD, "--batch-size=-1"], "at least 1"),
    ("evaluate --per-class 0", [*EVAL_GOOD, "--per-class", "0"], "at least 1"),
    ("evaluate --per-class -5", [*EVAL_GOOD, "--per-class=-5"], "at least 1"),
    ("evaluate --per-class more than a class has", [*EVAL_GOOD, "--per-class", "5000"], "fewer than"),
    ("evaluate --steps 0", [*EVAL_GOOD, "--steps", "0"], "at least 1"),
    ("evaluate --restarts 0", [*EVAL_GOOD, "--restarts", "0"], "at least 1"),
    ("evaluate --limit 0", [*EVAL_GOOD, "--limit", "0"], "at least 1"),
    ("evaluate --top-k 0", [*EVAL_GOOD, "--top-k", "0"], "at least 1"),
    ("evaluate --eps-curve with a bad value", [*EVAL_GOOD, "--eps-curve", "0.1,abc"], "eps-curve"),
    ("evaluate --victim unknown class", [*EVAL_GOOD, "--victim", "zebra"], "no class 'zebra'"),
    ("evaluate --attack unknown", [*EVAL_GOOD, "--attack", "deepfool"], "invalid choice"),
    ("evaluate unknown option", [*EVAL_GOOD, "--epsilon", "0.1"], "unrecognized arguments"),
    # evaluate: checkpoints
    ("evaluate checkpoint missing", [*EVAL, "--checkpoint", f"{I}nope.pt"], "does not exist"),
    ("evaluate checkpoint is a folder", [*EVAL, "--checkpoint", GOOD_RUN], "is a folder"),
    ("evaluate checkpoint empty", [*EVAL, "--checkpoint", f"{I}empty.pt"], "is empty"),
    ("evaluate checkpoint is an HTML page", [*EVAL, "--checkpoint", f"{I}page.pt"], "HTML"),
    ("evaluate checkpoint of random bytes", [*EVAL, "--checkpoint", f"{I}random.pt"], "not a PyTorch weights file"),
    ("evaluate checkpoint truncated", [*EVAL, "--checkpoint", f"{I}truncated.pt"], "truncated or corrupt"),
    ("evaluate checkpoint pickle that runs code", [*EVAL, "--checkpoint", f"{I}evil.pt"], "would run code"),
    ("evaluate checkpoint head for 5 classes", [*EVAL, "--checkpoint", f"{I}wrong_head.pt"], r"\(5, \d+\) in the file"),
    ("evaluate checkpoint with NaN weights", [*EVAL, "--checkpoint", f"{I}nan.pt"], "NaN"),
    ("evaluate --arch unknown", [*EVAL_GOOD, "--arch", "resnet-9000"], "unknown architecture"),
    ("evaluate --arch without --checkpoint", [*EVAL, "--arch", "mnist-cnn"], "--checkpoint is needed"),
    ("evaluate --dataset unknown", ["evaluate", "--dataset", "cifar11", "--checkpoint", f"{GOOD_RUN}/model.pt"],
     "unknown data set"),
    # evaluate: your own model
    ("evaluate --model output width 7 for 10 classes", [*EVAL, "--model", f"{USER}:wrong_width"], r"\(1, 7\)"),
    ("evaluate --model for other images", [*EVAL, "--model", f"{USER}:wrong_input"], "cannot take"),
    ("evaluate --model factory raises", [*EVAL, "--model", f"{USER}:raises"], "no such layer size"),
    ("evaluate --model factory returns None", [*EVAL, "--model", f"{USER}:returns_none"], "NoneType"),
    ("evaluate --model file with a syntax error", [*EVAL, "--model", f"{I}code/broken.py:good"], "SyntaxError"),
    ("evaluate --model file missing", [*EVAL, "--model", f"{I}code/nope.py:good"], "no file"),
    ("evaluate --model without :factory", [*EVAL, "--model", USER], "must look like"),
    ("evaluate --model no such factory", [*EVAL, "--model", f"{USER}:nope"], "has no attribute"),
    ("evaluate --model module not importable", [*EVAL, "--model", "no_such_pkg.models:make"], "cannot import"),
    ("evaluate --model and --arch", [*EVAL, "--model", f"{USER}:good", "--arch", "mnist-cnn"], "not both"),
    ("evaluate --model checkpoint head for 5 classes",
     [*EVAL, "--model", f"{USER}:good", "--checkpoint", f"{I}custom_wrong.pt"], r"'1.weight' is \(5, 64\)"),
    ("evaluate --model checkpoint with inf weights",
     [*EVAL, "--model", f"{USER}:good", "--checkpoint", f"{I}custom_inf.pt"], "infinite"),
    ("evaluate --mean not numbers", [*EVAL, "--model", f"{USER}:good", "--mean", "a", "--std", "b"], "numbers"),
    ("evaluate --std 0", [*EVAL, "--model", f"{USER}:good", "--mean", "0.5", "--std", "0"], "> 0"),
    ("evaluate --mean imagenet on grey data", [*EVAL, "--model", f"{USER}:good", "--mean", "imagenet"], "3 channels"),
    ("evaluate --mean without --std", [*EVAL, "--model", f"{USER}:good", "--mean", "0.5"], "both --mean and --std"),
    # evaluate: outputs
    ("evaluate --out is a file", [*EVAL_GOOD, "--out", f"{I}afile"], "is a file"),
    ("evaluate --out under a file", [*EVAL_GOOD, "--out", f"{I}afile/eval"], "cannot be created"),
    ("evaluate --out not writable", [*EVAL_GOOD, "--out", "/proc/classwise-eval"], "not writable"),
    ("evaluate --robustbench-json is a folder", [*EVAL_GOOD, "--robustbench-json", I], "is a folder"),
    # data sets
    ("evaluate CIFAR meta without label_names", ["evaluate", "--dataset", "cifar10", "--data-dir",
                                                 f"{I}cifar_meta", "--arch", "resnet20", "--checkpoint", "x.pt"],
     "label_names"),
    ("evaluate CIFAR batch without labels", ["evaluate", "--dataset", "cifar10", "--data-dir",
                                             f"{I}cifar_labels", "--arch", "resnet20", "--checkpoint", "x.pt"],
     "'labels'"),
    ("evaluate image too large to decode", ["evaluate", "--dataset", "imagefolder", "--data-dir", f"{I}bomb",
                                            "--model", f"{USER}:any_input"], "too large"),
    ("evaluate imagefolder without --data-dir", ["evaluate", "--dataset", "imagefolder", "--arch", "tv:resnet18",
                                                 "--checkpoint", "x.pt"], "needs --data-dir"),
    # train
    ("train --lr inf", [*TRAIN, "--lr", "inf", "--out", "runs/t"], "finite"),
    ("train --lr nan", [*TRAIN, "--lr", "nan", "--out", "runs/t"], "finite"),
    ("train --lr 0", [*TRAIN, "--lr", "0", "--out", "runs/t"], "lr"),
    ("train --weight-decay inf", [*TRAIN, "--weight-decay", "inf", "--out", "runs/t"], "weight_decay"),
    ("train --momentum -1", [*TRAIN, "--momentum=-1", "--out", "runs/t"], "momentum"),
    ("train --epochs 0", [*TRAIN, "--epochs", "0", "--out", "runs/t"], "epochs"),
    ("train --batch-size 1", [*TRAIN, "--batch-size", "1", "--out", "runs/t"], "batch_size"),
    ("train --train-limit 5", [*TRAIN, "--train-limit", "5", "--out", "runs/t"], "train_limit"),
    ("train --eps 1e999", [*TRAIN, "--eps", "1e999", "--out", "runs/t"], "finite"),
    ("train --milestones a,b", [*TRAIN, "--milestones", "a,b", "--out", "runs/t"], "whole numbers"),
    ("train --method unknown", [*TRAIN, "--method", "nosuch", "--out", "runs/t"], "nosuch"),
    ("train --arch unknown (no folder left)", [*TRAIN, "--arch", "resnet-9000", "--out", "runs/t"],
     "unknown architecture"),
    ("train --arch tv:../../x (no folder outside)", [*TRAIN, "--arch", "tv:../../x"], "torchvision has no"),
    ("train --dataset unknown", ["train", "--dataset", "cifar11", *TINY, "--out", "runs/t"], "unknown data set"),
    ("train on an image folder without train/", ["train", "--dataset", "imagefolder", "--data-dir", f"{I}flat",
                                                  "--arch", "tv:resnet18", *TINY, "--out", "runs/t"], "train/"),
    ("train --out is a file", [*TRAIN, "--out", f"{I}afile"], "is a file"),
    ("train --out under a file", [*TRAIN, "--out", f"{I}afile/run"], "cannot be created"),
    ("train --resume with other settings", ["train", "--dataset", "digits", *TINY[2:], "--epochs", "2", "--resume",
                                            "--out", GOOD_RUN], r"epochs \(1 -> 2\)"),
    # study
    ("study --preset unknown", ["study", "--dataset", "digits", "--preset", "huge"], "unknown preset"),
    ("study --arch unknown into an existing run", [*STUDY, "--arch", "resnet-9000", "--resume", "--out", GOOD_STUDY],
     "unknown architecture"),
    ("study --resume with other settings", [*STUDY, "--lr", "0.01", "--resume", "--out", GOOD_STUDY], r"run\.lr"),
    ("study --out is a file", [*STUDY, "--out", f"{I}afile"], "is a file"),
    ("study --eps 300", [*STUDY, "--eps", "300", "--out", "runs/s"], "pixel range"),
    ("study --methods unknown", [*STUDY, "--methods", "standard,nosuch", "--out", "runs/s"], "nosuch"),
    ("study --init-from not ARM=SOURCE", [*STUDY, "--init-from", "frl", "--out", "runs/s"], "ARM=SOURCE"),
    ("study --init-from an arm not in the study", [*STUDY, "--init-from", "standard=pgd", "--out", "runs/s"],
     "pgd not one of the methods"),
    ("study --init-from a later arm", [*STUDY[:-len(TINY) - 1], "standard,pgd", *TINY, "--init-from", "standard=pgd",
                                       "--out", "runs/s"], "must come before"),
    # sweep
    ("sweep config missing", ["sweep", f"{I}nope.toml"], "does not exist"),
    ("sweep config is a folder", ["sweep", I], "is a folder"),
    ("sweep config not UTF-8", ["sweep", f"{I}latin1.toml"], "UTF-8"),
    ("sweep config not TOML", ["sweep", f"{I}syntax.toml"], "not valid TOML"),
    ("sweep config unknown key", ["sweep", f"{I}unknown_key.toml"], "unknown key 'run.learning_rate'"),
    ("sweep grid with an unknown method (before any run)", ["sweep", f"{I}bad_method.toml"], "nosuch"),
    ("sweep grid with an unknown arch", ["sweep", f"{I}bad_arch.toml"], "run 2 of 2.*resnet-9000"),
    ("sweep grid with an unknown data set", ["sweep", f"{I}bad_dataset.toml"], "cifar11"),
    ("sweep grid with a negative lr", ["sweep", f"{I}bad_value.toml"], "lr"),
    ("sweep name ../../escaped", ["sweep", f"{I}traversal.toml"], "not a plain folder name"),
    ("sweep absolute name", ["sweep", f"{I}absolute.toml"], "not a plain folder name"),
    ("sweep --jobs 0", ["sweep", f"{I}bad_method.toml", "--jobs", "0"], "at least 1"),
    ("sweep --out is a file", ["sweep", f"{I}ok.toml", "--out", f"{I}afile"], "is a file"),
    ("sweep --out under a file", ["sweep", f"{I}ok.toml", "--out", f"{I}afile/study"], "cannot be created"),
    # runs
    ("runs on garbage study.db", ["runs", f"{I}garbage.db"], "not a SQLite database"),
    ("runs on a truncated study.db", ["runs", f"{I}truncated.db"], "damaged or truncated"),
    ("runs on a foreign SQLite file", ["runs", f"{I}foreign.db"], "not a classwise study"),
    ("runs on a folder without study.db", ["runs", I], "no study database"),
    ("runs --export --output DIR", ["runs", "runs/goodsweep", "--export", "csv", "--output", I], "is a folder"),
    ("runs --export --output under a file", ["runs", "runs/goodsweep", "--export", "csv", "--output",
                                             f"{I}afile/x.csv"], "is a file"),
    ("runs --export unknown format", ["runs", "runs/goodsweep", "--export", "xlsx"], "invalid choice"),
    # datasets, models, top level
    ("datasets --download unknown", ["datasets", "--download", "cifar11"], "unknown data set"),
    ("unknown command", ["trian"], "invalid choice"),
    # a finished result is the user's: without --resume or --overwrite a command aimed at it changes nothing
    ("study again on a finished study", [*STUDY, "--out", GOOD_STUDY], "already holds a finished study.*--resume"),
    ("study --resume --overwrite", [*STUDY, "--resume", "--overwrite", "--out", GOOD_STUDY], "give one of them"),
    ("study --out a training run", [*STUDY, "--resume", "--out", GOOD_RUN], "holds a training run, not a study"),
    ("train again on a finished run", [*TRAIN, "--out", GOOD_RUN], "already holds a finished training run"),
    ("train --out a study", [*TRAIN, "--out", GOOD_STUDY], "holds a study, not a training run"),
    ("evaluate --out an existing evaluation", [*EVAL_GOOD, "--out", GOOD_EVAL], "already holds .*evaluation"),
    ("evaluate --out a training run", [*EVAL_GOOD, "--out", GOOD_RUN], "holds a training run, not an evaluation"),
    ("explain --out a study", ["explain", GOOD_RUN, "--out", GOOD_STUDY], "holds a study"),
    ("sweep --out a study", ["sweep", f"{I}ok.toml", "--out", GOOD_STUDY], "holds a study"),
    ("features build --out a study", ["features", "build", "--kind", "det", "--from", f"{GOOD_RUN}/model.pt",
                                      "--out", GOOD_STUDY], "holds a study"),
    # the whole request before the first write: method parameters, seeds, devices, weights
    ("study --critical zebra --resume on a finished study",
     [*STUDY[:-len(TINY) - 1], "standard,fgsm-rs,critical", *TINY, "--critical", "zebra", "--resume", "--out",
      GOOD_STUDY], "no class 'zebra'"),
    ("study --critical 10 (an index past the classes)",
     [*STUDY[:-len(TINY) - 1], "standard,critical", *TINY, "--critical", "10", "--out", "runs/s"], "no class '10'"),
    ("study --critical-weight inf", [*STUDY[:-len(TINY) - 1], "standard,critical", *TINY, "--critical", "3",
                                     "--critical-weight", "inf", "--out", "runs/s"], "--critical-weight inf.*finite"),
    ("study --weighted-weights nan", [*STUDY[:-len(TINY) - 1], "standard,weighted", *TINY, "--weighted-weights",
                                      "1,nan,1,1,1,1,1,1,1,1", "--out", "runs/s"], "finite"),
    ("study --dafa-warmup past the last epoch", [*STUDY[:-len(TINY) - 1], "standard,dafa", *TINY, "--dafa-warmup",
                                                 "5", "--out", "runs/s"], "dafa.*--force"),
    ("study --cfa-begin past the last epoch", [*STUDY[:-len(TINY) - 1], "standard,cfa", *TINY, "--cfa-begin", "3",
                                               "--out", "runs/s"], "cfa.*--force"),
    ("study --init-from given twice", [*STUDY[:-len(TINY) - 1], "trades,frl", *TINY, "--init-from", "frl=trades",
                                       "--init-from", "frl=standard", "--out", "runs/s"], "'frl' twice"),
    ("study --seeds with a negative seed", [*STUDY, "--seeds", "0,-1", "--out", "runs/s"], "seed.*0 to 4294967295"),
    ("study --seed 2^32", [*STUDY, "--seed", str(2**32), "--out", "runs/s"], "seed.*0 to 4294967295"),
    ("study --device unknown", [*STUDY, "--device", "tpu9", "--out", "runs/s"], "unknown device"),
    ("study --resume with a damaged eval.json", [*STUDY, "--resume", "--out", f"{I}damaged_study"],
     r"damaged_study/standard/eval\.json.*JSON object"),
    ("train --critical zebra", [*TRAIN, "--method", "critical", "--critical", "zebra", "--out", "runs/t"],
     "no class 'zebra'"),
    ("train --seed -1", [*TRAIN, "--seed=-1", "--out", "runs/t"], "seed"),
    ("train --device unknown", [*TRAIN, "--device", "tpu9", "--out", "runs/t"], "unknown device"),
    ("train --init-weights missing", [*TRAIN, "--init-weights", f"{I}nope.pt", "--out", "runs/t"], "does not exist"),
    ("train on a constructed data set with a code-running chunk",
     ["train", "--dataset", f"features:{I}features_evil", *TINY, "--out", "runs/t"], "chunk.*would run code"),
    ("train on a constructed data set whose meta.json is no JSON",
     ["train", "--dataset", f"features:{I}features_badmeta", *TINY, "--out", "runs/t"], "meta.json"),
    ("evaluate --device unknown", [*EVAL_GOOD, "--device", "tpu9"], "unknown device"),
    ("evaluate --seed 2^32", [*EVAL_GOOD, "--seed", str(2**32)], "seed"),
    # corruptions: a named frost folder must hold the photographs; the published files must be whole
    ("evaluate --frost-dir missing", [*EVAL_GOOD, "--corruptions", "frost", "--frost-dir", f"{I}nofrost"],
     "--frost-dir .* does not exist"),
    ("evaluate --frost-dir is a file", [*EVAL_GOOD, "--corruptions", "frost", "--frost-dir", f"{I}afile"], "is a file"),
    ("evaluate --frost-dir empty", [*EVAL_GOOD, "--corruptions", "frost", "--frost-dir", f"{I}emptydir"], "lacks"),
    ("evaluate --frost-dir holds non-images", [*EVAL_GOOD, "--corruptions", "frost", "--frost-dir", f"{I}badfrost"],
     "cannot be read as images"),
    ("study --frost-dir missing", [*STUDY, "--corruptions", "fog", "--frost-dir", f"{I}nofrost", "--out", "runs/s"],
     "does not exist"),
    ("evaluate CIFAR-10-C file truncated", ["evaluate", "--dataset", "cifar10", "--data-dir", f"{I}c10c", "--model",
                                            f"{USER}:any_input", "--corruptions", "fog"], r"fog\.npy is truncated"),
    ("evaluate CIFAR-10-C file of Python objects", ["evaluate", "--dataset", "cifar10", "--data-dir", f"{I}c10c",
                                                    "--model", f"{USER}:any_input", "--corruptions", "contrast"],
     r"contrast\.npy holds Python objects"),
    ("evaluate CIFAR-10-C file of floats", ["evaluate", "--dataset", "cifar10", "--data-dir", f"{I}c10c",
                                            "--model", f"{USER}:any_input", "--corruptions", "brightness"],
     r"brightness\.npy: expected uint8"),
    # explain: every eval.json checked when read; runs of different data sets are not mixed
    *[(f"explain eval.json {kind}", ["explain", f"{I}eval_{kind}"], says) for kind, says in (
        ("list", "expected a JSON object"), ("not_json", "not a readable evaluation record"),
        ("float_pred", r"clean_pred\[0\].*integer"), ("label_out", r"labels\[0\] is 13, not a class index"),
        ("negative", "is -1, not a class index"), ("lengths", "clean_pred holds 48 entries for 50 labels"),
        ("classes_text", "classes.*list"), ("no_labels", "labels: Field required"),
        ("sums_shape", r"class_sums\.clean\.logits has shape \(1, 2\)"))],
    ("explain runs of different data sets", ["explain", GOOD_RUN, f"{I}otherclasses", "--out", f"{I}ab"],
     "different data sets.*3 classes"),
    # features build: the request before the model and the data are read
    ("features build --out is a file", ["features", "build", "--kind", "det", "--from", f"{GOOD_RUN}/model.pt",
                                        "--out", f"{I}afile"], "is a file"),
    ("features build --chunk 0", ["features", "build", "--kind", "det", "--from", f"{GOOD_RUN}/model.pt", "--out",
                                  "runs/f", "--chunk", "0"], "at least 1"),
    ("features build --step-size nan", ["features", "build", "--kind", "det", "--from", f"{GOOD_RUN}/model.pt",
                                        "--out", "runs/f", "--step-size", "nan"], "finite"),
    ("features build --step-size inf", ["features", "build", "--kind", "robust", "--from", f"{GOOD_RUN}/model.pt",
                                        "--out", "runs/f", "--step-size", "inf"], "finite"),
    ("features build --step-size 0", ["features", "build", "--kind", "det", "--from", f"{GOOD_RUN}/model.pt",
                                      "--out", "runs/f", "--step-size", "0"], "above 0"),
    ("features build --steps 0", ["features", "build", "--kind", "det", "--from", f"{GOOD_RUN}/model.pt",
                                  "--out", "runs/f", "--steps", "0"], "at least 1"),
    ("features build --device unknown", ["features", "build", "--kind", "det", "--from", f"{GOOD_RUN}/model.pt",
                                         "--out", "runs/f", "--device", "tpu9"], "unknown device"),
    ("features build resuming onto a chunk that runs code",
     ["features", "build", "--kind", "det", "--from", f"{GOOD_RUN}/model.pt", "--out", f"{I}features_planted",
      "--limit", "20", "--steps", "1", "--chunk", "10"], r"features_planted/chunks/00000\.pt .*would run code"),
    # sweeps: seeds and method parameters of every run before the store exists
    ("sweep grid with an infinite method parameter", ["sweep", f"{I}inf_param.toml"], "finite"),
    ("sweep grid with a class the data set lacks", ["sweep", f"{I}zebra.toml"], "no class 'zebra'"),
]


def _api_cases():
    import numpy as np

    import classwise as cw
    from classwise.config.run import RunConfig
    from classwise.data import per_class_subset
    from classwise.models import load_weights
    from classwise.models.custom import build_custom_model, load_custom_weights, normalization
    from classwise.study.grid import load_grid
    from classwise.study.store import Store

    inp = Path("inputs")  # relative: the cases run in the workspace
    return [
        ("TrainConfig(eps=inf)", lambda: cw.TrainConfig(eps=math.inf), "finite"),
        ("TrainConfig(lr=nan)", lambda: cw.TrainConfig(lr=math.nan), "finite"),
        ("TrainConfig(eps=2) linf", lambda: cw.TrainConfig(eps=2.0), "pixel range"),
        ("TrainConfig(epochs=0)", lambda: cw.TrainConfig(epochs=0), "epochs"),
        ("TrainConfig(colour=...)", lambda: cw.TrainConfig(colour="blue"), "unknown key 'colour'"),
        ("RunConfig(threads=0)", lambda: RunConfig(threads=0), "threads"),
        ("AttackSpec(eps=5)", lambda: cw.AttackSpec(eps=5), "pixel range"),
        ("AttackSpec(eps=inf)", lambda: cw.AttackSpec(eps=math.inf, norm="l2"), "finite"),
        ("AttackSpec(steps=0)", lambda: cw.AttackSpec(eps=0.1, steps=0), "steps"),
        ("create_model(num_classes=0)", lambda: cw.create_model("mnist-cnn", num_classes=0), "num_classes"),
        ("create_model(unknown)", lambda: cw.create_model("resnet-9000"), "unknown architecture"),
        ("create_model(tv:unknown)", lambda: cw.create_model("tv:resnet-9000"), "torchvision has no"),
        ("create_model(input_size too small)", lambda: cw.create_model("resnet18", 10, 3, 4), "at least"),
        ("load_weights(NaN file)", lambda: load_weights(cw.create_model("mnist-cnn", 10, 1, 8), inp / "nan.pt"),
         "NaN"),
        ("load_weights(random bytes)", lambda: load_weights(cw.create_model("mnist-cnn", 10, 1, 8),
                                                            inp / "random.pt"), "not a PyTorch weights file"),
        ("load_dataset(unknown)", lambda: cw.load_dataset("cifar11"), "unknown data set"),
        ("load_dataset(CIFAR batch without labels)", lambda: cw.load_dataset("cifar10", inp / "cifar_labels"),
         "'labels'"),
        ("image too large (API)", lambda: cw.load_dataset("imagefolder", inp / "bomb").test.images_at([0]),
         "too large"),
        ("per_class_subset(0)", lambda: per_class_subset(cw.load_dataset("digits").test, 0), "at least 1"),
        ("build_custom_model(factory returns None)", lambda: build_custom_model(f"{inp}/code/usermodels.py:"
                                                                                "returns_none"), "NoneType"),
        ("normalization(bad numbers)", lambda: normalization("1,x,3", "1", 3), "numbers"),
        ("load_grid(name ../../x)", lambda: load_grid(inp / "traversal.toml"), "not a plain folder name"),
        ("Store(garbage, readonly)", lambda: Store(inp / "garbage.db", readonly=True), "not a SQLite database"),
        ("load_custom_weights(HTML page)", lambda: load_custom_weights(torch.nn.Linear(2, 2), inp / "page.pt"),
         "HTML"),
        ("ClassData(labels of another length)", lambda: cw.ClassData(
            torch.zeros(3, 1, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), ["a"]), "one per image"),
        ("AttackSpec(eps=nan, l2)", lambda: cw.AttackSpec(eps=float(np.nan), norm="l2"), "finite"),
        # evaluate: what the CLI refuses, the API refuses with the same kind of line
        ("evaluate(labels negative)", lambda: cw.evaluate(_linear(), (torch.rand(4, 1, 8, 8),
                                                                      torch.tensor([0, 1, -1, 2]))),
         "class indices.*got -1"),
        ("evaluate(labels not integers)", lambda: cw.evaluate(_linear(), (torch.rand(3, 1, 8, 8),
                                                                          torch.tensor([0.0, 1.5, 2.0]))),
         r"integers\), got 1\.5"),
        ("evaluate(labels outside the model's classes)", lambda: cw.evaluate(
            _linear(), (torch.rand(3, 1, 8, 8), torch.tensor([0, 12, 2]))), "labels go up to 12.*10 logits"),
        ("evaluate(an empty data set)", lambda: cw.evaluate(_linear(), cw.load_dataset("digits").test.subset([])),
         "empty"),
        ("evaluate(no images in the pair)", lambda: cw.evaluate(_linear(), (torch.rand(0, 1, 8, 8),
                                                                            torch.zeros(0, dtype=torch.long))),
         "empty"),
        ("evaluate(a model on the meta device)", lambda: cw.evaluate(_linear().to("meta"),
                                                                     cw.load_dataset("digits").test), "'meta' device"),
        ("evaluate(a model for other images)", lambda: cw.evaluate(torch.nn.Sequential(torch.nn.Flatten(),
                                                                                      torch.nn.Linear(784, 10)),
                                                                  cw.load_dataset("digits").test), "cannot take"),
        ("evaluate(device unknown)", lambda: cw.evaluate(_linear(), cw.load_dataset("digits").test, device="tpu9"),
         "unknown device"),
        *([("evaluate(device='cuda' without CUDA)", lambda: cw.evaluate(_linear(), cw.load_dataset("digits").test,
                                                                       device="cuda"), "CUDA is not available")]
          if not torch.cuda.is_available() else []),
        ("load_dataset(None)", lambda: cw.load_dataset(None), "named by a string"),
        ("ClassData(a negative label)", lambda: cw.ClassData(torch.zeros(2, 1, 8, 8, dtype=torch.uint8),
                                                            torch.tensor([0, -1]), ["a", "b"]), "got -1"),
        ("EvalResult.from_dict(a list)", lambda: cw.EvalResult.from_dict([1, 2]), "JSON object"),
        ("EvalResult.from_dict(float predictions)", lambda: cw.EvalResult.from_dict(
            {"classes": ["a", "b"], "labels": [0, 1], "clean_pred": [0.0, 1.0]}), r"clean_pred\[0\]"),
        ("run_study on a finished study", lambda: cw.run_study(cw.StudyConfig(run={"dataset": "digits"}),
                                                               GOOD_STUDY), "already holds a finished study"),
    ]


_HASHES: dict = {}  # (path, stat) -> sha256: a file whose inode, size and times are unchanged is not read again


def _linear():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))


def _snapshot(*roots: Path) -> dict:
    """Every folder, and every file's sha256 with its inode (an atomic replace is a new inode)."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                out[os.path.join(dirpath, d)] = "dir"
            for f in filenames:
                p = os.path.join(dirpath, f)
                st = os.stat(p)
                key = (p, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                if key not in _HASHES:
                    _HASHES[key] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
                out[p] = (st.st_ino, _HASHES[key])
    return out


def _record(kind: str, message: str) -> None:
    table = os.environ.get("CLASSWISE_BAD_INPUT_TABLE")
    if table:
        path = Path(table)
        rows = json.loads(path.read_text()) if path.exists() else {}
        rows[kind] = message
        path.write_text(json.dumps(rows, indent=1))


@pytest.fixture
def inside(ws, monkeypatch):
    """Run in the workspace, compare every file and folder (and HOME, and the folder above
    the workspace, where an escaping name would land) before and after."""
    home = ws.parent / "home"
    monkeypatch.chdir(ws)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # importing a user's file writes no __pycache__
    before = _snapshot(ws.parent)
    yield
    after = _snapshot(ws.parent)
    assert {k for k in after if k not in before} == set(), "new files"
    assert [k for k in before if after.get(k) != before[k]] == [], "changed or removed files"


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("kind,argv,says", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(inside, capsys, kind, argv, says):
    import re

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    line = _one_line(err)
    assert code == 2, err
    assert re.search(says, line), line
    _record(kind, line)


API_KINDS = [kind for kind, _, _ in _api_cases()]


@pytest.mark.parametrize("kind", API_KINDS)
def test_api_bad_input(ws, inside, kind):
    import re

    cases = {k: (fn, says) for k, fn, says in _api_cases()}
    fn, says = cases[kind]
    with pytest.raises(ClasswiseError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message and message.strip(), message
    assert re.search(says, message), message
    _record(f"API: {kind}", message)


def test_the_battery_covers_sixty_kinds():
    assert len(CLI_CASES) + len(API_KINDS) >= 60


@pytest.mark.parametrize("folder,argv", [
    (GOOD_STUDY, [*STUDY, "--resume", "--out", GOOD_STUDY]),
    (GOOD_RUN, [*TRAIN, "--resume", "--out", GOOD_RUN]),
    ("runs/goodsweep", ["sweep", "../grid.toml", "--out", "runs/goodsweep", "--quiet"]),
], ids=["study", "train", "sweep"])
def test_a_folder_in_use_is_named_and_left_alone(ws, inside, capsys, folder, argv):
    """Another live process holds the folder: one line naming it (pid, host, since when), exit 2,
    nothing changed (the holder's lock file goes with it)."""
    from classwise.study.lock import FolderLock

    with FolderLock(ws / folder, what="study"):
        code = main(argv)
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and f"process {os.getpid()} on " in line and "--wait" in line, line
    _record(f"{argv[0]} on a folder another process holds", line)


def test_escaping_names_stay_inside(ws, inside):
    """A default folder built from `--arch tv:../../x` is one folder name under runs/."""
    from classwise.io import safe_name

    assert safe_name("train-digits-tv:../../x-standard") == "train-digits-tv-x-standard"
    assert "/" not in safe_name("/abs/../path") and not safe_name("..").startswith(".")


def test_failed_download_is_named_and_leaves_nothing(ws, inside, capsys, monkeypatch):
    import torchvision.datasets.utils as tvu

    def offline(url, *args, **kwargs):
        raise OSError(f"<urlopen error [Errno -3] Temporary failure in name resolution> ({url})")
    monkeypatch.setattr(tvu, "download_url", offline)
    code = main(["datasets", "--download", "mnist", "--data-dir", "inputs/mnist-here"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "downloading mnist" in line and "failed" in line and "not found" not in line, line
    # the hint says where to put the files by hand, not the command that just failed
    assert "by hand: put the four IDX files" in line and "in inputs/mnist-here/mnist/" in line, line
    assert "classwise datasets --download" not in line, line
    _record("datasets --download with no network", line)


def test_runs_reads_a_study_without_writing_to_it(ws, inside, capsys):
    assert main(["runs", "runs/goodsweep"]) == 0
    assert "1 finished" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # the planted pickle, refused
def test_tiny_imagenet_cache_truncated_or_planted_is_rebuilt(tmp_path, monkeypatch):
    from datafiles import write_tiny_imagenet

    import classwise as cw

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_tiny_imagenet(tmp_path / "data")
    first = cw.load_dataset("tiny-imagenet", tmp_path / "data")
    (cache,) = (tmp_path / "home" / ".cache" / "classwise").glob("tiny-imagenet-*.pt")
    for bad in (cache.read_bytes()[:100], pickle.dumps(_Evil()), b"\0" * 64):
        cache.write_bytes(bad)
        again = cw.load_dataset("tiny-imagenet", tmp_path / "data")
        assert torch.equal(again.test.images, first.test.images) and torch.equal(again.test.labels, first.test.labels)
        assert torch.load(cache, weights_only=True)["val"][0].shape == first.test.images.shape  # rebuilt


def test_train_and_evaluate_are_functions_beside_their_subpackages(tmp_path, synth):
    """The functions and the packages that hold them have different names (no callable module)."""
    from types import FunctionType

    import classwise as cw
    import classwise.evaluation
    import classwise.training  # noqa: F401 - binds the subpackages to `classwise.training`, `.evaluation`

    assert isinstance(cw.train, FunctionType) and isinstance(cw.evaluate, FunctionType)

    cfg = cw.TrainConfig(dataset="synthetic", epochs=1, eval_subset=20, eval_steps=1, train_limit=100).resolved(
        grey=True)
    first = cw.train(cfg, synth, tmp_path / "a")
    second = cw.train(cfg, synth, tmp_path / "b")  # the README's example, twice
    res = cw.evaluate(second.model, synth.test, [cw.AttackSpec(eps=0.1, steps=1)])
    assert len(first.history) == 1 and len(res.labels) == len(synth.test)
    assert cw.training.trainer.CHECKPOINT == "checkpoint.pt"


def test_each_data_set_has_a_default_architecture_that_fits_it():
    from argparse import Namespace

    from classwise.cli.common import overrides
    from classwise.data import DATASETS
    from classwise.models import check_arch

    for spec in DATASETS.values():
        check_arch(spec.default_arch)
    assert overrides(Namespace(dataset="cifar10"))["arch"] == "resnet20"
    assert overrides(Namespace(dataset="fashion-mnist"))["arch"] == "mnist-cnn"
    assert overrides(Namespace(dataset="cifar10", arch="vgg16"))["arch"] == "vgg16"


def test_prepare_run_dir_refuses_a_changed_resume_and_writes_only_what_changed(tmp_path):
    from classwise.study.outdir import prepare_run_dir

    cfg = {"run": {"epochs": 3, "lr": 0.1}, "methods": ["standard"], "device": "cpu"}
    prepare_run_dir(tmp_path / "r", cfg, resume=False)
    config = tmp_path / "r" / "config.json"
    (tmp_path / "r" / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    prepare_run_dir(tmp_path / "r", {**cfg, "device": "cuda"}, resume=True)  # the device is no setting
    assert json.loads(config.read_text())["device"] == "cuda"
    assert not list((tmp_path / "r").glob(".*.tmp"))
    before = config.read_bytes()
    with pytest.raises(ClasswiseError, match=r"run\.epochs \(3 -> 5\).*methods"):
        prepare_run_dir(tmp_path / "r", {**cfg, "run": {"epochs": 5, "lr": 0.1}, "methods": ["pgd"]}, resume=True)
    assert config.read_bytes() == before
    same = config.stat().st_ino
    prepare_run_dir(tmp_path / "r", json.loads(before), resume=True)
    assert config.stat().st_ino == same  # identical settings: the file is not rewritten


@pytest.mark.parametrize("which,says", [
    ("train", r"^the training set is empty: .*0 images"),
    ("val", r"^the validation set is empty: .*0 images"),
    ("none", r"^the training set is empty: data set 'synthetic' has no training images"),
], ids=["empty training set", "empty validation set", "no training set"])
def test_train_refuses_an_empty_set_before_writing_anything(tmp_path, synth, which, says):
    """The library path as clear as the CLI's: train() on 0 training (or validation) images is one
    ClasswiseError line, and no output folder, not a silent model or an error after an epoch."""
    import classwise as cw
    from classwise.data import Splits

    train_set = {"train": synth.train.subset([]), "none": None}.get(which, synth.train)
    val_set = synth.val.subset([]) if which == "val" else synth.val
    splits = Splits(train_set, val_set, synth.test)
    cfg = cw.TrainConfig(dataset="synthetic", epochs=1, eval_subset=20, eval_steps=1, train_limit=100).resolved(
        grey=True)
    with pytest.raises(ClasswiseError, match=says) as info:
        cw.train(cfg, splits, tmp_path / "run")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
