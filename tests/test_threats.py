import json

import numpy as np
import pytest
import torch
from models_issue6 import EPS, digits, robust_digits

from classwise.attacks import AttackSpec, IntoClassSpec, VictimSpec, attack
from classwise.errors import ClasswiseError
from classwise.evaluation import (
    EvalResult,
    curve_table,
    eps_curve,
    evaluate,
    half_accuracy_eps,
    into_table,
    victim_summary,
    victim_table,
)

PGD20 = AttackSpec(eps=EPS, steps=20)


@pytest.fixture(scope="module")
def untargeted():
    return evaluate(robust_digits(), digits().test, [PGD20], show_progress=False)


def test_victim_attack_lowers_its_class_at_least_as_much_as_untargeted(untargeted):
    acc = untargeted.per_class(PGD20.label)["accuracy"].to_numpy()
    victims = [int(np.argmax(acc)), int(np.argmin(acc))]  # the untargeted attack's hardest and easiest class
    specs = [VictimSpec(victim=v, attack=PGD20) for v in victims]
    alone = evaluate(robust_digits(), digits().test, specs, show_progress=False)  # the victim runs on their own
    for v, spec in zip(victims, specs, strict=True):
        s = victim_summary(alone, spec.label)
        print(f"\nvictim class '{s['victim']}' ({s['n']} images): clean {s['accuracy']['clean'] * 100:.1f}%, "
              f"untargeted pgd20 {acc[v] * 100:.1f}%, victim attack {s['accuracy'][spec.label] * 100:.1f}%")
        assert s["accuracy"][spec.label] <= acc[v]
        assert s["accuracy"][spec.label] < s["accuracy"]["clean"]
        mine = alone.labels == v
        assert np.array_equal(alone.adv_pred[spec.label][~mine], alone.clean_pred[~mine]), "only the victim is hit"
        dest = victim_table(alone, spec.label)  # where its images go: sums to one, matches the records
        assert dest[spec.label].sum() == pytest.approx(1.0)
        assert dest[spec.label][v] == pytest.approx(s["accuracy"][spec.label])
    # run beside the untargeted attack, the victim attacker also has that attack's successes
    together = evaluate(robust_digits(), digits().test, [PGD20, specs[1]], show_progress=False)
    s = victim_summary(together, specs[1].label)
    fooled = (together.labels == victims[1]) & (together.adv_pred[PGD20.label] != together.labels)
    assert (together.adv_pred[specs[1].label][fooled] != victims[1]).all()
    assert s["accuracy"][specs[1].label] <= s["accuracy"][PGD20.label]


def test_into_class_threat_pushes_the_other_classes_into_the_target(untargeted):
    target = 0
    spec = IntoClassSpec(target=target, attack=AttackSpec(eps=0.2, steps=20))
    res = evaluate(robust_digits(), digits().test, [spec], show_progress=False)
    adv, clean, y = res.adv_pred[spec.label], res.clean_pred, res.labels
    assert np.array_equal(adv[y == target], clean[y == target])
    changed = adv != clean
    assert changed.any() and (adv[changed] == target).all(), "a changed record is always a move into the target"
    table = into_table(res, spec.label)
    assert target not in table["class"].astype(int).tolist()
    assert (table[spec.label] >= table["clean"]).all() and (table[spec.label] > table["clean"]).any()
    moved = (adv[y != target] == target).mean()
    print(f"\ninto class {target} at eps 0.2: {moved * 100:.1f}% of the other classes' images (clean "
          f"{(clean[y != target] == target).mean() * 100:.1f}%)")
    # the records hold up: re-attacking the moved images reaches the target again from scratch
    rows = np.flatnonzero(changed)[:20]
    x = digits().test.images[rows].float() / 255
    again = attack(robust_digits(), x, torch.as_tensor(y[rows]), spec.attack,
                   target=torch.full((len(rows),), target))
    assert again.success.float().mean() > 0.5


def test_eps_curve_per_class_and_the_eps_that_halves_each_class():
    data = digits().test
    grid = [0.05, 0.1, 0.2, 0.3]
    res = eps_curve(robust_digits(), data, AttackSpec(eps=EPS, steps=10), grid, show_progress=False)
    table = curve_table(res)
    assert list(table.columns) == ["class", "clean"] + [f"eps={e:.4g}" for e in grid]
    acc = table[[f"eps={e:.4g}" for e in grid]].to_numpy()
    assert (acc[:, -1] <= acc[:, 0]).all() and acc[:, -1].mean() < 0.5 * table["clean"].mean()
    half = half_accuracy_eps(res)
    for c in range(10):  # recomputed here straight from the per-sample records
        mine = res.labels == c
        clean = (res.clean_pred[mine] == c).mean()
        per_eps = [(res.adv_pred[f"pgd10@{e:.4g}"][mine] == c).mean() for e in grid]
        first = next((e for e, a in zip(grid, per_eps, strict=True) if a < clean / 2), np.nan)
        assert half["eps_below_half"][c] == pytest.approx(first, nan_ok=True)
        if not np.isnan(first):
            prev = ([0.0] + grid)[grid.index(first)]
            assert prev <= half["eps_half"][c] <= first
    print("\neps halving each class: " + ", ".join(f"{c}: {e:.3f}" for c, e in zip(half["class"], half["eps_half"],
                                                                                   strict=True)))


def test_threat_records_survive_json_and_recompute_without_attacking(untargeted):
    spec_v, spec_i = VictimSpec(victim=3, attack=AttackSpec(eps=EPS, steps=5)), IntoClassSpec(
        target=5, attack=AttackSpec(eps=EPS, steps=5))
    data = digits().test.subset(np.arange(120))
    res = evaluate(robust_digits(), data, [spec_v, spec_i], show_progress=False)
    back = EvalResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.kind(spec_v.label) == "victim" and back.kind(spec_i.label) == "into" and back.robust_keys == []
    assert victim_table(back, spec_v.label).equals(victim_table(res, spec_v.label))
    assert into_table(back, spec_i.label).equals(into_table(res, spec_i.label))
    assert np.array_equal(back.confusion(spec_i.label), res.confusion(spec_i.label))


def test_bad_threats_are_refused():
    with pytest.raises(ClasswiseError, match="out of range"):
        evaluate(robust_digits(), digits().test.subset(np.arange(5)), [VictimSpec(victim=12, attack=PGD20)],
                 show_progress=False)
    with pytest.raises(ClasswiseError, match="share the label"):
        evaluate(robust_digits(), digits().test.subset(np.arange(5)), [PGD20, PGD20], show_progress=False)
    with pytest.raises(ClasswiseError, match="not a victim threat"):
        victim_table(evaluate(robust_digits(), digits().test.subset(np.arange(5)), [PGD20], show_progress=False),
                     PGD20.label)


def test_cli_runs_l2_class_targeted_threats_and_an_eps_curve(tmp_path, capsys):
    from classwise.cli import main

    torch.save(robust_digits().state_dict(), tmp_path / "robust.pt")
    out = tmp_path / "out"
    code = main(["evaluate", "--dataset", "digits", "--arch", "mnist-cnn", "--checkpoint", str(tmp_path / "robust.pt"),
                 "--norm", "l2", "--eps", "1.5", "--steps", "10", "--limit", "100", "--victim", "3", "--target", "5",
                 "--eps-curve", "0.5,1.5,3", "--out", str(out), "--quiet"])
    assert code == 0
    stdout = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["attack"]["norm"] == "l2" and results["attack"]["eps"] == 1.5  # an L2 radius, not 1.5/255
    assert set(results["threats"]) == {"victim3-pgd10-l2", "into5-pgd10-l2"}
    res = EvalResult.from_dict(json.loads((out / "eval.json").read_text()))
    assert res.keys == ["clean", "pgd10-l2", "victim3-pgd10-l2", "into5-pgd10-l2"]
    assert victim_summary(res, "victim3-pgd10-l2")["accuracy"]["victim3-pgd10-l2"] <= \
        victim_summary(res, "victim3-pgd10-l2")["accuracy"]["pgd10-l2"]
    curve = EvalResult.from_dict(json.loads((out / "eps_curve.json").read_text()))
    assert [k for k in curve.adv_pred] == ["pgd10-l2@0.5", "pgd10-l2@1.5", "pgd10-l2@3"]
    assert "victim class '3'" in stdout and "into '5'" in stdout and "falls below half" in stdout
    assert [c["name"] for c in results["sanity"]] == ["robust_le_clean", "falls_with_eps", "stronger_not_weaker",
                                                     "large_eps_chance", "gradients"]
    assert stdout.count("sanity ") == 5
