"""`cw.audit`: the library call behind `classwise evaluate` (the same numbers as `cw.evaluate`, the
same files as `classwise evaluate --out`, a finished evaluation refused unless overwrite), and the
threats' one interface (`evaluation.threats`: a new kind of threat is a runner, not a branch)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import classwise as cw
from classwise.corruptions.spec import CorruptionSpec
from classwise.data import make_synthetic
from classwise.errors import ClasswiseError

PGD = cw.AttackSpec(eps=0.1, steps=3)
THREATS = [PGD, cw.AttackSpec(name="fgsm", eps=0.1), cw.VictimSpec(victim=7, attack=PGD, targets=2),
           cw.IntoClassSpec(target=0, attack=PGD), CorruptionSpec(name="contrast", severity=4)]
FILES = {"eval.json", "results.json", "per_class.csv", "robustbench.json", "eps_curve.json", "eps_curve.csv",
         "corruption_per_class.csv", "figures"}


@pytest.fixture(scope="module")
def tiny():
    """A linear model trained for a moment on 8x8 synthetic images, and 60 test images."""
    train, test = make_synthetic(10, (1, 8, 8), n_train=400, n_test=60, seed=3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x = train.images.float() / 255
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(x), train.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), test


def _digests(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_audit_gives_evaluates_numbers_and_writes_the_evaluation_files(tiny, tmp_path):
    model, test = tiny
    res = cw.evaluate(model, test, THREATS, batch_size=32, show_progress=False)
    out = tmp_path / "audit"
    done = cw.audit(model, test, THREATS, out, name="tiny", eps_curve=[0.05, 0.2], batch_size=32,
                    show_progress=False)
    assert done.result.to_dict() == res.to_dict()  # every prediction and per-class sum
    for key in res.keys:
        pd.testing.assert_frame_equal(done.per_class(key), res.per_class(key))
    assert 0 < res.accuracy("pgd3") < res.accuracy("clean")  # the attack did something: a real comparison

    assert {p.name for p in out.iterdir()} == FILES
    assert json.loads((out / "eval.json").read_text()) == res.to_dict()
    record = json.loads((out / "results.json").read_text())
    assert record["arch"] == "tiny" and record["dataset"] == test.name and record["attack"] == PGD.model_dump()
    assert list(record["attacks"]) == ["pgd3", "fgsm"] and list(record["threats"]) == ["victim7-pgd3", "into0-pgd3"]
    assert record["robust"]["overall"] == pytest.approx(res.accuracy("pgd3"))
    assert record["sanity"] == done.sanity.to_dict() and record["sanity"]
    assert record["corruptions"]["corruptions"] == ["contrast"] and record["corruptions"]["skipped"] == {}
    table = pd.read_csv(out / "per_class.csv")
    assert list(table.columns) == ["class", "clean", "pgd3", "fgsm"]
    assert table["pgd3"].to_numpy() == pytest.approx(res.per_class("pgd3")["accuracy"].to_numpy())
    assert json.loads((out / "robustbench.json").read_text()) == done.robustbench
    assert done.robustbench["clean_acc"] == f"{res.accuracy() * 100:.2f}"
    curve = json.loads((out / "eps_curve.json").read_text())
    assert sorted(curve["adv_pred"]) == ["pgd3@0.05", "pgd3@0.2"]
    assert (out / "figures" / "corruption_tiny.png").read_bytes()[:4] == b"\x89PNG"
    assert set(done.files) == {p for p in out.rglob("*") if p.is_file()}


def test_audit_takes_an_images_labels_pair_as_evaluate_does(tiny):
    model, test = tiny
    pair = (test.images.float() / 255, test.labels)
    res = cw.evaluate(model, pair, [PGD], show_progress=False)
    done = cw.audit(model, pair, [PGD], sanity=False, show_progress=False)
    assert done.files == [] and done.sanity is None and done.dataset == "tensors"
    assert np.array_equal(done.result.adv_pred["pgd3"], res.adv_pred["pgd3"])
    pd.testing.assert_frame_equal(done.per_class("pgd3"), res.per_class("pgd3"))


def test_audit_refuses_a_finished_evaluation_unless_overwrite(tiny, tmp_path):
    model, test = tiny
    out = tmp_path / "audit"
    cw.audit(model, test, [PGD], out, eps_curve=[0.1], sanity=False, show_progress=False)
    (out / "notes.txt").write_text("mine")
    before = _digests(out)
    with pytest.raises(ClasswiseError, match="already holds a finished evaluation; rerun with --overwrite"):
        cw.audit(model, test, [PGD], out, sanity=False, show_progress=False)
    assert _digests(out) == before  # nothing was touched
    done = cw.audit(model, test, [cw.AttackSpec(name="fgsm", eps=0.1)], out, overwrite=True, sanity=False,
                    show_progress=False)
    assert not (out / "eps_curve.json").exists()  # the old evaluation's files went with it
    assert (out / "notes.txt").read_text() == "mine"  # what is not ours stays
    assert list(json.loads((out / "eval.json").read_text())["adv_pred"]) == ["fgsm"]
    assert _digests(out)["eval.json"] != before["eval.json"] and len(done.files) == 4


def test_cli_evaluate_writes_what_audit_writes(tmp_path, capsys):
    """`classwise evaluate` only parses, calls the library and prints: its files are audit's."""
    from classwise.cli import main
    from classwise.data import stratified_subset
    from classwise.models.sources import evaluation_model

    splits = cw.load_dataset("digits")
    torch.manual_seed(0)
    torch.save(cw.create_model("mnist-cnn", 10, 1, 8).state_dict(), tmp_path / "m.pt")
    cli = tmp_path / "cli"
    assert main(["evaluate", "--dataset", "digits", "--arch", "mnist-cnn", "--checkpoint", str(tmp_path / "m.pt"),
                 "--limit", "40", "--steps", "2", "--victim", "3", "--quiet", "--out", str(cli)]) == 0
    assert "victim class '3'" in capsys.readouterr().out
    test = stratified_subset(splits.test, 40, seed=0)
    model, name, fmt = evaluation_model(test, arch="mnist-cnn", checkpoint=tmp_path / "m.pt", train=splits.train)
    pgd = cw.AttackSpec(eps=0.1, steps=2)
    lib = tmp_path / "lib"
    cw.audit(model, test, [pgd, cw.VictimSpec(victim=3, attack=pgd)], lib, name=name, dataset="digits",
             checkpoint_format=fmt, show_progress=False)
    assert _digests(cli) == _digests(lib)


def test_a_new_kind_of_threat_is_a_runner_not_a_branch(tiny):
    from pydantic import BaseModel

    from classwise.evaluation.threats import RUNNERS, Runner, register_threat

    class FlipSpec(BaseModel):  # mirrored images: a threat `evaluate` never heard of
        threat: str = "corruption"

        @property
        def label(self) -> str:
            return "flip"

        def describe(self) -> str:
            return "flip: images mirrored"

    class FlipRunner(Runner):
        kind = "corruption"

        def run(self, spec, chunk, setting, gen, sums, label):
            return setting.model(chunk.x.flip(-1)).argmax(1)

    model, test = tiny
    with pytest.raises(ClasswiseError, match="not an attack: .*; use AttackSpec, AutoAttackSpec, VictimSpec, "
                                             "IntoClassSpec or CorruptionSpec$"):
        cw.evaluate(model, test, [FlipSpec()], show_progress=False)
    register_threat(FlipSpec, FlipRunner())
    try:
        res = cw.evaluate(model, test, [FlipSpec(), PGD], batch_size=16, show_progress=False)
    finally:
        RUNNERS.pop(FlipSpec)
    with torch.no_grad():
        want = model(test.images.float().flip(-1) / 255).argmax(1).numpy()
    assert np.array_equal(res.adv_pred["flip"], want) and res.kind("flip") == "corruption"
    assert np.array_equal(res.adv_pred["pgd3"], cw.evaluate(model, test, [PGD], batch_size=16,
                                                            show_progress=False).adv_pred["pgd3"])
