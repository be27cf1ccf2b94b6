"""The evaluation pass collects per-class sums of logits, softmax and loss as it runs."""

import numpy as np
import torch
import torch.nn.functional as F

import classwise as cw
from classwise.data import load_dataset


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))


def test_clean_and_adversarial_sums_match_a_direct_computation():
    test = load_dataset("digits").test
    model = _model()
    res = cw.evaluate(model, test, [cw.AttackSpec(eps=0.1, steps=3)], batch_size=64, show_progress=False)
    x, y = test.images.float() / 255, test.labels
    with torch.no_grad():
        logits = model(x).double()
    want = np.zeros((10, 10))
    np.add.at(want, y.numpy(), logits.numpy())
    np.testing.assert_allclose(res.class_sums["clean"]["logits"], want, atol=1e-4)
    np.testing.assert_allclose(res.class_sums["clean"]["loss"],
                               np.bincount(y, weights=F.cross_entropy(logits, y, reduction="none").numpy()), atol=1e-4)
    # softmax rows sum to one image each; the attack raises the loss of every class it touches
    counts = np.bincount(y, minlength=10)
    np.testing.assert_allclose(res.class_sums["pgd3"]["probs"].sum(1), counts, atol=1e-6)
    assert (res.class_sums["pgd3"]["loss"] >= res.class_sums["clean"]["loss"] - 1e-6).all()
    assert res.class_sums["pgd3"]["loss"].sum() > res.class_sums["clean"]["loss"].sum()
    np.testing.assert_allclose(res.class_mean("clean"), want / counts[:, None], atol=1e-6)


def test_sums_survive_json_and_chunking():
    test = load_dataset("digits").test
    model = _model()
    a = cw.evaluate(model, test, [cw.AttackSpec(eps=0.1, steps=3)], batch_size=16, show_progress=False)
    b = cw.EvalResult.from_dict(a.to_dict())
    parts = cw.EvalResult.concat([cw.evaluate(model, test.subset(np.arange(i, min(i + 200, len(test)))),
                                              [cw.AttackSpec(eps=0.1, steps=3)], batch_size=16, show_progress=False)
                                  for i in range(0, len(test), 200)])
    for key in ("clean", "pgd3"):
        np.testing.assert_array_equal(a.class_sums[key]["logits"], b.class_sums[key]["logits"])
    # separate evaluations draw their own random starts: only the clean sums must add up exactly
    np.testing.assert_allclose(a.class_sums["clean"]["probs"], parts.class_sums["clean"]["probs"], atol=1e-6)
    assert parts.class_sums["pgd3"]["loss"].shape == (10,)
