import pytest
import torch

from classwise.errors import ClasswiseError
from classwise.models import MODELS, count_parameters, create_model
from classwise.models.registry import published_range
from classwise.models.torchvision_models import published_count


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (1, 64), (3, 28), (1, 32), (3, 64)])
def test_every_model_runs_forward_and_backward(name, channels, size):
    model = create_model(name, num_classes=7, in_channels=channels, input_size=size).train()
    x = torch.rand(2, channels, size, size, requires_grad=True)
    out = model(x)
    assert isinstance(out, torch.Tensor), "auxiliary heads must not leak out of the model"
    assert out.shape == (2, 7)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", sorted(n for n, e in MODELS.items() if e.published_params))
def test_parameter_count_matches_the_published_one(name):
    entry = MODELS[name]
    c, h, _ = entry.reference_shape
    value, tolerance = published_range(entry.published_params)
    assert abs(count_parameters(create_model(name, 10, c, h).net) - value) <= tolerance


def test_published_range_reads_the_last_printed_digit():
    assert published_range("36.5M") == (36.5e6, 0.05e6)
    assert published_range("0.27M") == pytest.approx((270_000, 5_000))


@pytest.mark.parametrize("name", ["resnet50", "densenet121", "vgg16_bn", "googlenet"])
def test_torchvision_imagenet_models_match_torchvision_counts(name):
    model = create_model(f"tv:{name}", num_classes=1000, in_channels=3, input_size=224)
    assert count_parameters(model.net) == published_count(name)
    assert torch.allclose(model.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))


def test_normalization_lives_inside_the_model():
    torch.manual_seed(0)
    model = create_model("resnet20", 10, 3, 32, mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3]).eval()
    x = torch.rand(3, 3, 32, 32)
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), model.net((x - mean) / std), atol=1e-6)
    assert "mean" in model.state_dict() and "std" in model.state_dict()


def test_unknown_or_too_small_inputs_are_refused():
    with pytest.raises(ClasswiseError, match="unknown architecture"):
        create_model("resnet1000")
    with pytest.raises(ClasswiseError, match="torchvision has no"):
        create_model("tv:resnet1000")
    with pytest.raises(ClasswiseError, match="at least 20 px"):
        create_model("lenet", 10, 1, 8)


def test_models_command_lists_every_architecture_with_both_counts(capsys, monkeypatch):
    from classwise.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.count("│") > 4}
    assert set(MODELS) <= set(rows)
    resnet18 = rows["resnet18"]
    assert resnet18[2] == MODELS["resnet18"].published_params
    assert resnet18[1] == f"{count_parameters(create_model('resnet18', 10, 3, 32).net) / 1e6:.3f} M"
