"""A public CIFAR-10 checkpoint as an old PyTorch saved it: legacy (non-zip) format, no
BatchNorm `num_batches_tracked` buffers, DataParallel `module.` prefixes, weights nested under
`state_dict` beside training state, normalization done by the data pipeline. `classwise
evaluate --model` must accept it exactly as `model.load_state_dict` does and give the same
per-class accuracy as a plain PyTorch loop over the same images."""

import sys
import textwrap

import numpy as np
import pandas as pd
import torch
from datafiles import write_cifar10

from classwise.cli import main

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)  # what --mean/--std cifar10 stand for

USER_MODEL = textwrap.dedent('''
    from torch import nn


    def make(num_classes=10):
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(64, num_classes))
''')


def test_old_pytorch_checkpoint_evaluates_like_a_plain_pytorch_loop(tmp_path, monkeypatch):
    _, names, batches = write_cifar10(tmp_path / "data", per_batch=10, n_test=60)
    (tmp_path / "oldnet.py").write_text(USER_MODEL)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    sys.path.insert(0, str(tmp_path))
    try:
        import oldnet

        torch.manual_seed(0)
        net = oldnet.make()
        with torch.no_grad():  # trained-looking BatchNorm statistics, so that the buffers matter
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("oldnet", None)
    state = {f"module.{k}": v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert len(state) < len(net.state_dict())  # the buffers an old PyTorch did not have are gone
    torch.save({"epoch": 120, "best_prec1": 93.1, "state_dict": state}, tmp_path / "old.pth.tar",
               _use_new_zipfile_serialization=False)

    # the reference: plain PyTorch, as the checkpoint's README would say to use it
    ref = oldnet_make(tmp_path)
    plain = torch.load(tmp_path / "old.pth.tar", weights_only=True)["state_dict"]
    ref.load_state_dict({k.removeprefix("module."): v for k, v in plain.items()})  # strict, as PyTorch does
    data, labels = batches["test_batch"]
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32)).float() / 255
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        pred = ref.eval()(x).argmax(1).numpy()
    labels = np.asarray(labels)
    expected = [float((pred[labels == c] == c).mean()) for c in range(10)]

    out = tmp_path / "eval"
    code = main(["evaluate", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--model",
                 f"{tmp_path / 'oldnet.py'}:make", "--checkpoint", str(tmp_path / "old.pth.tar"), "--mean", "cifar10",
                 "--std", "cifar10", "--steps", "1", "--no-sanity", "--quiet", "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out / "per_class.csv")
    assert list(table["class"]) == names
    assert table["clean"].tolist() == expected
    assert len(set(expected)) > 1  # not a model that gives every class the same score


def oldnet_make(folder):
    import importlib.util

    spec = importlib.util.spec_from_file_location("oldnet_ref", folder / "oldnet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make()
