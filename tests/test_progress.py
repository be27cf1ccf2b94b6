"""Signs of life: every attack of the AutoAttack ensemble reports its progress (images done of
those still robust, robust accuracy so far, time left) on the terminal, in plain lines and
through the API's hook, without changing a single prediction; `evaluate` says how long it will
take before it starts."""

import re

import pytest
import torch
from models_issue6 import EPS, digits

from classwise import progress
from classwise.attacks import AutoAttackSpec, run_autoattack
from classwise.attacks.autoattack import _configure
from classwise.attacks.spec import GradSafe
from classwise.data import stratified_subset
from classwise.models import create_model

pytest.importorskip("pyautoattack")

SPEC = AutoAttackSpec(eps=EPS, iterations=3, queries=30, targets=2)  # the standard ensemble, a tiny budget


def _model():
    torch.manual_seed(0)
    data = digits().train
    model = create_model("mnist-cnn", 10, 1, 8, *data.channel_stats())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = data.images.float() / 255, data.labels
    for i in range(0, 640, 64):  # a few steps: right on most images, not robust
        loss = torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def aa_run():
    model = _model()
    test = stratified_subset(digits().test, 30, seed=0)
    x, y = test.images.float() / 255, test.labels
    events = []
    with progress.progress_hook(events.append):
        out = run_autoattack(model, x, y, SPEC, num_classes=10, batch_size=16, seed=0)
    return model, x, y, out, events


def test_every_attack_of_the_ensemble_reports_its_progress_through_the_hook(aa_run):
    _, x, y, out, events = aa_run
    attacks = list(dict.fromkeys(e.info["attack"] for e in events))
    assert attacks[0] == "apgd-ce" and set(attacks) <= {"apgd-ce", "apgd-t", "fab-t", "square"}
    for attack in attacks:
        mine = [e for e in events if e.info["attack"] == attack]
        assert mine[0].desc == f"{SPEC.label} {attack}" and mine[0].done == 0
        last = mine[-1]
        assert last.finished and last.done == last.total  # every image it had to attack, attacked
        assert [e.done for e in mine] == sorted(e.done for e in mine)  # never backwards
        assert all(0 <= e.info["robust"] <= 1 and "robust so far" in e.info["text"] for e in mine)
    # the first attack takes every image the model gets right; each later one those still robust;
    # the robust share the hook saw last is the ensemble's result
    clean = (out.pred == y).float().mean().item()
    first = next(e for e in events if e.info["attack"] == "apgd-ce")
    assert first.total >= (out.pred == y).sum().item()
    totals = [next(e.total for e in events if e.info["attack"] == a) for a in attacks]
    assert totals == sorted(totals, reverse=True)
    assert events[-1].info["robust"] == pytest.approx(clean)


def test_the_progress_changes_no_prediction(aa_run):
    """The same AutoAttack run straight through pyautoattack, without our progress: identical."""
    from pyautoattack import AutoAttack

    model, x, y, out, _ = aa_run
    with torch.random.fork_rng():
        aa = AutoAttack(GradSafe(model), eps=SPEC.eps, norm="Linf", seed=0, version="standard")
        _configure(aa, SPEC, 10)
        _, pred = aa.run_standard_evaluation(x, y, batch_size=16)
    assert torch.equal(pred, out.pred)


def test_plain_lines_when_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)
    monkeypatch.setattr(progress, "QUIET", False)  # whatever an earlier test left
    test = stratified_subset(digits().test, 20, seed=1)
    run_autoattack(_model(), test.images.float() / 255, test.labels, SPEC, num_classes=10, batch_size=8, seed=0)
    lines = capsys.readouterr().err.splitlines()
    shape = re.compile(r"^aa-quick (apgd-ce|apgd-t|fab-t|square): \d+/\d+ images, robust so far \d+\.\d%")
    assert lines and all(shape.match(line) for line in lines), lines
    assert any(line.startswith("aa-quick apgd-ce: ") for line in lines)


def test_evaluate_says_how_long_it_will_take_before_it_starts(tmp_path, capsys, monkeypatch):
    from classwise.cli import main
    from classwise.estimate import estimate_evaluation, estimate_line
    from classwise.evaluation import evaluate as run_evaluate

    model = _model()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    assert main(["evaluate", "--dataset", "digits", "--arch", "mnist-cnn", "--checkpoint", str(tmp_path / "m.pt"),
                 "--limit", "100", "--steps", "3", "--no-sanity"]) == 0
    captured = capsys.readouterr()
    line = next(ln for ln in captured.err.splitlines() if ln.startswith("estimated time: about"))
    assert "for 100 images (" in line and "pgd3" in line and "clean" in line, line
    assert captured.out.strip(), "the results follow the estimate"
    # the passes of one batch, timed, times the passes each attack makes; AutoAttack's is an upper bound
    from classwise.attacks import AttackSpec, AutoAttackSpec

    test = stratified_subset(digits().test, 100, seed=0)
    pgd, aa = AttackSpec(eps=EPS, steps=3), AutoAttackSpec(eps=EPS, iterations=3, queries=30, targets=2)
    est = estimate_evaluation(model, test, [pgd, aa], batch_size=32)
    assert est.n == 100 and est.probe == 32 and set(est.parts) == {"clean", "pgd3", "aa-quick"}
    assert est.upper == ["aa-quick"] and est.seconds == pytest.approx(sum(est.parts.values()))
    assert "aa-quick at most" in estimate_line(est) and estimate_line(None) is None
    # the arithmetic, with the timings fixed: a forward pass 1 s, with the input gradient 2 s, half right
    monkeypatch.setattr("classwise.estimate.pass_times", lambda *a: (1.0, 2.0, 0.5))
    est = estimate_evaluation(model, test, [pgd, aa], batch_size=32)
    # 4 batches read twice; 2 batches of right images x 3 steps x 2 s; AutoAttack's passes per batch at
    # this budget (APGD-CE 6, APGD-T 12, FAB-T 20 with gradients, Square 34 without) on those 2 batches
    assert est.parts == {"clean": 8.0, "pgd3": 12.0, "aa-quick": 2 * (6 + 12 + 20) * 2.0 + 2 * 34 * 1.0}
    run_evaluate(model, test, [pgd], show_progress=False)  # the model is as it was: it still evaluates
