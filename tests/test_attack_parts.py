"""The CPU hot-loop devices of the 32-px training attacks (benchmarks/README.md): an eval-mode
attack run in independent parts, one per thread, and the folded copy traced once per model.
Both must give the same bits as the plain computation."""

from __future__ import annotations

import pytest
import torch
from torch.fx.experimental.optimization import fuse

import classwise.attacks.core as core
from classwise.attacks.core import eval_mode, perturb
from classwise.attacks.fold import folded
from classwise.models import create_model
from classwise.precision import autocast


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _model(arch, channels=3, size=32):
    torch.manual_seed(0)
    model = create_model(arch, 10, channels, size, mean=[0.4] * channels, std=[0.3] * channels)
    model = model.to(memory_format=torch.channels_last).train()
    with torch.no_grad():
        model(torch.rand(64, channels, size, size).contiguous(memory_format=torch.channels_last))  # running stats
    return model


@pytest.mark.parametrize("arch,channels,size", [("resnet20", 3, 32), ("mnist-cnn", 1, 28), ("airbench-half", 3, 32)])
def test_an_attack_in_parts_is_the_attack_on_the_whole_batch(arch, channels, size, two_threads, monkeypatch):
    model = _model(arch, channels, size)
    x = torch.rand(70, channels, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (70,))
    calls = []
    real = core.in_parts
    monkeypatch.setattr(core, "in_parts", lambda fn, n, parts: calls.append(parts) or real(fn, n, parts))
    with eval_mode(model):
        net = folded(model)
        reference = torch.softmax(net(x), 1)
        cases = [{"eps": 8 / 255, "steps": 3},  # PGD from a uniform start
                 {"eps": torch.rand(70) * 0.05, "alpha": torch.rand(70) * 0.01, "steps": 2, "loss": "kl",
                  "reference": reference, "init": "normal"},  # per-image eps and step, TRADES's loss and start
                 {"eps": 8 / 255, "steps": 2, "loss": core.PerImage(  # a loss of each image's own rows
                     lambda logits, rows: torch.where(y[rows] < 5, -1.0, 1.0) * logits.logsumexp(1))}]
        for kw in cases:
            calls.clear()
            split = perturb(net, x, y, track=False, generator=torch.Generator().manual_seed(3), **kw).x_adv
            assert calls == [2]  # two parts, one a thread
            monkeypatch.setattr(core, "MIN_PART", 10**6)
            whole = perturb(net, x, y, track=False, generator=torch.Generator().manual_seed(3), **kw).x_adv
            monkeypatch.setattr(core, "MIN_PART", 32)
            assert torch.equal(split, whole)
    assert torch.get_num_threads() == 2  # the process's thread count given back


def test_an_evaluation_in_parts_is_the_evaluation_on_the_whole(two_threads, monkeypatch):
    """The tracked attack (an evaluation's: early stop, a pool refilled as points leave) in two
    parts, each with half the pool: the same examples, predictions and successes per image."""
    from classwise.attacks import AttackSpec, attack

    model = _model("resnet20").eval()
    x = torch.rand(131, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (131,))
    calls = []
    real = core.in_parts
    monkeypatch.setattr(core, "in_parts", lambda fn, n, parts: calls.append(parts) or real(fn, n, parts))
    runs = {}
    for split in (True, False):
        monkeypatch.setattr(core, "MIN_PART", 32 if split else 10**6)
        for spec in (AttackSpec(eps=2 / 255, steps=4), AttackSpec(eps=4 / 255, steps=3, iterate="last")):
            out = attack(folded(model), x, y, spec, batch_size=50, generator=torch.Generator().manual_seed(4))
            runs[split, spec.label] = out
    assert calls == [2, 2]
    for label in ("pgd4", "pgd3-last"):
        a, b = runs[True, label], runs[False, label]
        assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.pred, b.pred) and torch.equal(a.success, b.success)
    assert 0 < int(runs[True, "pgd4"].success.sum()) < 131  # some fooled early, some not


def test_what_joins_the_images_is_never_split(two_threads):
    model = _model("resnet20")
    x = torch.rand(70, 3, 32, 32)
    assert core._independent_parts(model, x, "ce", None) == 1  # train-mode BatchNorm: batch statistics
    with eval_mode(model):
        assert core._independent_parts(model, x, "ce", None) == 2
        assert core._independent_parts(model, x, lambda logits: logits.sum(1), None) == 1  # may read the batch
        assert core._independent_parts(model, x, "ce", lambda xa, g: xa) == 1
        assert core._independent_parts(model, x[:40], "ce", None) == 1  # too few images for two parts
        with autocast("bf16", "cpu"):  # autocast is per thread
            assert core._independent_parts(model, x, "ce", None) == 1
    torch.set_num_threads(1)
    with eval_mode(model):
        assert core._independent_parts(model, x, "ce", None) == 1


def test_the_folded_copy_is_traced_once_and_follows_the_weights():
    model = _model("resnet20")
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    x = torch.rand(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    copies = set()
    for _ in range(3):
        model.train()
        loss = model(torch.rand(16, 3, 32, 32).contiguous(memory_format=torch.channels_last)).logsumexp(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with eval_mode(model):
            ours = folded(model)
            theirs = fuse(model, inplace=False).to(memory_format=torch.channels_last)
            copies.add(id(ours))
            for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
                assert torch.equal(a, b), name
            with torch.no_grad():
                assert torch.equal(ours(x), theirs(x))
    assert len(copies) == 1
    with eval_mode(model):
        model.to(memory_format=torch.contiguous_format)  # another layout: traced anew
        assert id(folded(model)) not in copies
