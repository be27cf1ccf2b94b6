import os

import pytest
import torch

from classwise.data import make_synthetic, split

# two threads (the CI machine's cores), or what OMP_NUM_THREADS asks for when a core is busy elsewhere
_asked = os.environ.get("OMP_NUM_THREADS", "")
torch.set_num_threads(int(_asked) if _asked.isdigit() and int(_asked) > 0 else min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def synth():
    """Small 10-class grey set, 16 px so that models train in a second."""
    train, test = make_synthetic(num_classes=10, shape=(1, 16, 16), n_train=1200, n_test=400, seed=1)
    return split(train, test, 0.1, seed=0)


@pytest.fixture(scope="session")
def trained(synth):
    """A small CNN trained for a few hundred steps: accurate on clean data, not robust."""
    from classwise.models import create_model

    torch.manual_seed(0)
    model = create_model("mnist-cnn", 10, 1, 16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = synth.train.images.float() / 255
    y = synth.train.labels
    for _ in range(4):
        for i in range(0, len(y), 100):
            loss = torch.nn.functional.cross_entropy(model(x[i:i + 100]), y[i:i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
