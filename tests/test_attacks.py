import pytest
import torch
from torch import nn

from classwise.attacks import AttackSpec, attack, perturb
from classwise.errors import ClasswiseError


def _batch(synth, n=64):
    return synth.test.images[:n].float() / 255, synth.test.labels[:n]


@pytest.mark.parametrize("name,norm,eps", [("fgsm", "linf", 0.1), ("pgd", "linf", 0.1),
                                           ("pgd", "l2", 1.0), ("fgsm", "l2", 0.5)])
def test_perturbation_stays_in_eps_ball_and_image_range(trained, synth, name, norm, eps):
    x, y = _batch(synth)
    out = attack(trained, x, y, AttackSpec(name=name, eps=eps, steps=7, norm=norm))
    delta = (out.x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all()
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert out.success.any(), "an attack this large should fool the non-robust model somewhere"


def test_targeted_pgd_stays_in_ball_and_reaches_targets(trained, synth):
    x, y = _batch(synth)
    target = (y + 1) % 10
    spec = AttackSpec(eps=0.3, steps=20)
    out = attack(trained, x, y, spec, target=target)
    assert ((out.x_adv - x).abs().amax((1, 2, 3)) <= 0.3 + 1e-6).all()
    assert torch.equal(out.success, out.pred == target)
    with torch.no_grad():
        clean_hits = (trained(x).argmax(1) == target).float().mean()
    assert out.success.float().mean() > clean_hits + 0.3


def test_attack_reports_its_own_adversarial_predictions(trained, synth):
    x, y = _batch(synth)
    out = attack(trained, x, y, AttackSpec(eps=0.15, steps=10))
    with torch.no_grad():
        pred = trained(out.x_adv).argmax(1)
    assert torch.equal(pred, out.pred)
    assert torch.equal(out.success, out.pred != y)


class _Probe(nn.Module):
    """BatchNorm and dropout make train and eval mode give different outputs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8 * 16 * 16, 10)

    def forward(self, x):
        return self.fc(self.drop(torch.relu(self.bn(self.conv(x)))).flatten(1))


@pytest.mark.parametrize("train_mode", [True, False])
def test_attack_leaves_weights_buffers_and_modes_unchanged(synth, train_mode):
    torch.manual_seed(0)
    model = _Probe().train(train_mode)
    model.drop.eval()  # a mixed state must come back exactly as it was
    flags = {n: m.training for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch(synth, 32)
    attack(model, x, y, AttackSpec(eps=0.1, steps=5))
    assert {n: m.training for n, m in model.named_modules()} == flags
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), f"{k} changed"  # BN running stats included
    assert all(p.grad is None for p in model.parameters())


def test_eps_zero_returns_the_input(trained, synth):
    x, y = _batch(synth)
    for spec in (AttackSpec(eps=0.0, steps=5), AttackSpec(name="fgsm", eps=0.0),
                 AttackSpec(eps=0.0, steps=5, norm="l2")):
        out = attack(trained, x, y, spec)
        assert torch.equal(out.x_adv, x)
        with torch.no_grad():
            assert torch.equal(out.pred, trained(x).argmax(1))


def test_early_stopped_and_plain_pgd_agree_per_sample(trained, synth):
    x = synth.test.images.float() / 255
    y = synth.test.labels
    spec = AttackSpec(eps=0.08, steps=10, restarts=2)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    early = attack(trained, x, y, spec, early_stop=True, generator=g1)
    plain = attack(trained, x, y, spec, early_stop=False, generator=g2)
    assert 0 < early.success.float().mean() < 1, "the test needs both fooled and robust points"
    assert torch.equal(early.success, plain.success)
    assert torch.equal(early.pred, plain.pred)
    assert torch.allclose(early.x_adv, plain.x_adv)


def test_any_iterate_success_is_at_least_final_iterate_success(trained, synth):
    """Keeping the best iterate can only make the attack stronger than reading the last one."""
    x, y = _batch(synth, 200)
    out = perturb(trained, x, y, eps=0.08, steps=10, early_stop=False,
                  generator=torch.Generator().manual_seed(0))
    final = perturb(trained, x, y, eps=0.08, steps=10, track=False,
                    generator=torch.Generator().manual_seed(0)).x_adv
    with torch.no_grad():
        final_success = trained(final).argmax(1) != y
    assert (out.success | ~final_success).all()


def test_pgd_is_stronger_than_fgsm(trained, synth):
    x = synth.test.images.float() / 255
    y = synth.test.labels
    fgsm = attack(trained, x, y, AttackSpec(name="fgsm", eps=0.05)).success.float().mean()
    pgd = attack(trained, x, y, AttackSpec(eps=0.05, steps=20)).success.float().mean()
    assert pgd >= fgsm


def test_margin_loss_attack_also_fools(trained, synth):
    x, y = _batch(synth)
    out = attack(trained, x, y, AttackSpec(eps=0.15, steps=10, loss="margin"))
    assert out.success.float().mean() > 0.3


@pytest.mark.parametrize("kwargs", [{"eps": -0.1, "steps": 3}, {"eps": 0.1, "steps": 0},
                                    {"eps": 0.1, "steps": 3, "norm": "l1"}])
def test_bad_attack_arguments_are_refused(trained, synth, kwargs):
    x, y = _batch(synth, 4)
    with pytest.raises(ClasswiseError):
        perturb(trained, x, y, **kwargs)
