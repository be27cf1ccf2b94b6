import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from datafiles import write_cifar10
from torch import nn

import classwise
from classwise.attacks import AttackSpec
from classwise.cli import main
from classwise.errors import ClasswiseError
from classwise.models.custom import build_custom_model, import_factory, load_custom_weights, wrap_normalization

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# a user's model, in a file of their own: it expects ImageNet-normalized input
USER_MODEL = textwrap.dedent('''
    from torch import nn


    class Net(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))
            self.head = nn.Linear(32 * 16, num_classes)

        def forward(self, x):
            return self.head(self.body(x).flatten(1))


    def make(num_classes=10):
        return Net(num_classes)


    def not_a_model():
        return 42
''')


def _normalize(x):
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def user_setup(tmp_path_factory):
    """Fake CIFAR-10 files, the user's model file, and a checkpoint saved the way many
    training scripts save one: DataParallel, normalization in the data pipeline, weights
    nested under 'model' beside other training state."""
    root = tmp_path_factory.mktemp("user")
    _, _, batches = write_cifar10(root / "data", per_batch=10, n_test=60)
    (root / "code").mkdir()
    (root / "code" / "usernet.py").write_text(USER_MODEL)
    sys.path.insert(0, str(root / "code"))
    try:
        net = import_factory("usernet:make")()
    finally:
        sys.path.remove(str(root / "code"))
    data, labels = batches["test_batch"]
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32)).float() / 255
    y = torch.tensor(labels)
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):  # the labels are random: the model learns these very images
        loss = F.cross_entropy(net(_normalize(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    torch.save({"epoch": 150, "model": nn.DataParallel(net).state_dict(), "optimizer": opt.state_dict()},
               root / "ckpt.pt")
    with torch.no_grad():  # the direct PyTorch loop over the same data
        direct = torch.cat([net(_normalize(x[i:i + 16])).argmax(1) for i in range(0, len(x), 16)]).numpy()
    return root, net, x, y, direct


def test_cli_evaluates_a_user_model_to_the_direct_loop_accuracy(user_setup):
    root, _, _, y, direct = user_setup
    state = torch.load(root / "ckpt.pt", weights_only=True)
    assert all(k.startswith("module.") for k in state["model"])
    proc = subprocess.run([sys.executable, "-m", "classwise", "evaluate", "--dataset", "cifar10", "--data-dir",
                           str(root / "data"), "--model", "usernet:make", "--checkpoint", str(root / "ckpt.pt"),
                           "--mean", "imagenet", "--std", "imagenet", "--steps", "5", "--out", str(root / "out"),
                           "--quiet"], cwd=root / "code", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = classwise.EvalResult.from_dict(json.loads((root / "out" / "eval.json").read_text()))
    expected = float((direct == y.numpy()).mean())
    print(f"\nclean accuracy: classwise evaluate {res.accuracy() * 100:.2f}%, direct loop {expected * 100:.2f}% "
          f"({len(y)} images)")
    assert expected > 0.8, "the model has learnt its images: a wrong normalization would show"
    assert res.accuracy() == expected
    assert np.array_equal(res.clean_pred, direct)
    rb = json.loads((root / "out" / "robustbench.json").read_text())
    assert rb["clean_acc"] == f"{expected * 100:.2f}" and rb["eps"] == "8/255" and rb["autoattack_acc"] is None
    assert "usernet:make (state_dict checkpoint) on cifar10" in proc.stdout


def test_python_api_takes_any_module_and_tensors(user_setup):
    _, net, x, y, direct = user_setup
    model = wrap_normalization(net, MEAN, STD)
    images = (x * 255).round().to(torch.uint8)
    res = classwise.evaluation(model, (images, y), attacks=[AttackSpec(eps=8 / 255, steps=3)], show_progress=False)
    assert np.array_equal(res.clean_pred, direct)
    assert res.accuracy("pgd3") <= res.accuracy()
    without = classwise.evaluation(net, (images, y), show_progress=False)  # normalization forgotten
    assert without.accuracy() < res.accuracy()
    # floats off the 1/255 grid are evaluated as they are, not quantised; outside [0, 1] is refused
    off_grid = (x * 0.999 + 0.0004).clamp(0, 1)
    with torch.no_grad():
        want = model(off_grid).argmax(1).numpy()
    assert np.array_equal(classwise.evaluation(model, (off_grid, y), show_progress=False).clean_pred, want)
    with pytest.raises(ClasswiseError, match=r"\[0, 1\]"):
        classwise.evaluation(net, (x + 2, y), show_progress=False)


def test_a_model_file_path_and_the_weights_loader(user_setup, tmp_path):
    root, net, *_ = user_setup
    model = build_custom_model(f"{root / 'code' / 'usernet.py'}:make", num_classes=10)
    load_custom_weights(model, root / "ckpt.pt")
    for k, v in net.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    torch.save({"state_dict": {"head.weight": torch.zeros(3, 3)}}, tmp_path / "other.pt")
    with pytest.raises(ClasswiseError, match="does not fit"):
        load_custom_weights(model, tmp_path / "other.pt")


@pytest.mark.parametrize("target,message", [
    ("usernet", "package.module:factory"),
    ("no_such_module_xyz:make", "cannot import module"),
    ("usernet:missing", "has no attribute"),
    ("usernet:not_a_model", "not a torch.nn.Module"),
])
def test_bad_model_options_are_one_clear_line(user_setup, target, message, monkeypatch, capsys):
    root = user_setup[0]
    monkeypatch.chdir(root / "code")
    code = main(["evaluate", "--dataset", "cifar10", "--data-dir", str(root / "data"), "--model", target, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_mean_std_options_are_checked(user_setup, capsys):
    root = user_setup[0]
    base = ["evaluate", "--dataset", "cifar10", "--data-dir", str(root / "data"), "--model",
            f"{root / 'code' / 'usernet.py'}:make", "--quiet"]
    assert main([*base, "--mean", "0.5,0.5", "--std", "0.2"]) == 2 and "3 values" in capsys.readouterr().err
    assert main([*base, "--mean", "0.5", "--std", "0"]) == 2 and "> 0" in capsys.readouterr().err
    assert main([*base, "--mean", "0.5"]) == 2 and "both --mean and --std" in capsys.readouterr().err
