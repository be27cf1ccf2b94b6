"""The weights files people have for ImageNet models: torchvision, MadryLab robustness and
RobustBench formats, and files that must be refused."""

import os
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
from torch import nn

from classwise.errors import ClasswiseError
from classwise.models import create_model, load_weights


def _reference():
    torch.manual_seed(0)
    model = create_model("tv:resnet18", num_classes=1000).eval()
    with torch.no_grad():  # random running stats so that BatchNorm buffers matter too
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


X = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _logits(model):
    with torch.no_grad():
        return model.eval()(X)


def test_torchvision_state_dict(tmp_path):
    ref = _reference()
    torch.save(ref.net.state_dict(), tmp_path / "resnet18.pth")
    fresh = create_model("tv:resnet18", num_classes=1000)
    assert load_weights(fresh, tmp_path / "resnet18.pth") == "state_dict"
    assert torch.equal(_logits(fresh), _logits(ref))


def test_madrylab_robustness_checkpoint_with_its_own_normalizer(tmp_path):
    ref = _reference()
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    ref.mean.copy_(mean.view(1, 3, 1, 1))
    ref.std.copy_(std.view(1, 3, 1, 1))
    net = ref.net.state_dict()
    state = {"module.normalizer.new_mean": mean.view(3, 1, 1), "module.normalizer.new_std": std.view(3, 1, 1),
             "module.attacker.normalize.new_mean": mean.view(3, 1, 1),
             "module.attacker.normalize.new_std": std.view(3, 1, 1)}
    state.update({f"module.model.{k}": v for k, v in net.items()})
    state.update({f"module.attacker.model.{k}": v for k, v in net.items()})
    torch.save({"model": state, "epoch": 90, "optimizer": {"state": {}, "param_groups": []}},
               tmp_path / "imagenet_l2_3_0.pt")
    fresh = create_model("tv:resnet18", num_classes=1000)
    assert load_weights(fresh, tmp_path / "imagenet_l2_3_0.pt") == "robustness"
    assert torch.allclose(fresh.mean.flatten(), mean)
    assert torch.equal(_logits(fresh), _logits(ref))


class _ImageNormalizer(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.as_tensor(std).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def test_robustbench_state_dict(tmp_path):
    ref = _reference()
    wrapped = nn.Sequential(OrderedDict([("normalize", _ImageNormalizer(ref.mean.flatten(), ref.std.flatten())),
                                         ("model", ref.net)]))
    torch.save(wrapped.state_dict(), tmp_path / "Salman2020Do_R18.pt")
    fresh = create_model("tv:resnet18", num_classes=1000)
    assert load_weights(fresh, tmp_path / "Salman2020Do_R18.pt") == "robustbench"
    assert torch.equal(_logits(fresh), _logits(wrapped))


def test_dataparallel_prefix_and_nesting_are_handled(tmp_path):
    ref = _reference()
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in ref.net.state_dict().items()}},
               tmp_path / "dp.pt")
    fresh = create_model("tv:resnet18", num_classes=1000)
    load_weights(fresh, tmp_path / "dp.pt")
    assert torch.equal(_logits(fresh), _logits(ref))


def _refused(path, match):
    with pytest.raises(ClasswiseError, match=match) as err:
        load_weights(create_model("tv:resnet18", num_classes=1000), path)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_an_html_page_is_refused(tmp_path):
    (tmp_path / "model.pt").write_text("<!DOCTYPE html><html><body>Sign in to continue</body></html>")
    _refused(tmp_path / "model.pt", "HTML")


def test_a_truncated_file_is_refused(tmp_path):
    torch.save(_reference().net.state_dict(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "cut.pt", "truncated|corrupt")


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    _Payload.marker = tmp_path / "pwned"
    torch.save({"state_dict": _Payload()}, tmp_path / "evil.pt")
    _refused(tmp_path / "evil.pt", "run code")
    assert not (tmp_path / "pwned").exists()
    proc = subprocess.run([sys.executable, "-m", "classwise", "evaluate", "--dataset", "digits", "--arch", "mnist-cnn",
                           "--checkpoint", str(tmp_path / "evil.pt")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "run code" in proc.stderr
    assert not (tmp_path / "pwned").exists()
