"""The tiny cases the golden fixtures (tests/golden/*.pt) were computed on with each method's
released code: a small BatchNorm network, three batches (balanced, class-unbalanced,
long-tailed), fixed adversarial inputs. The fixtures hold the inputs and the authors' outputs;
this module rebuilds the network they fit, for our side of the comparison (float64 throughout).

How the fixtures were made (the authors' code is not part of this repository): each repository
at the commit its fixture names was run in a scratch folder on CPU, `.cuda()` made a no-op,
float64 everywhere; an attack replaced by the fixed adversarial inputs where a case says so
(their perturbation loop given 0 steps and its random start set to land on them), the random
starts of the end-to-end cases drawn from torch's generator under the case's seed (numpy's
uniform draws routed to torch's so that both sides draw the same numbers), and a loss recorded
as the value its `backward()` was called on."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

GOLDEN = Path(__file__).parent / "golden"
CLASSES = 10
# CIFAR-10's statistics as CFA's normalize_cifar has them (the other repositories train on [0, 1])
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2471, 0.2435, 0.2616)


class Tiny(nn.Module):
    """conv 3x3 -> BatchNorm -> ReLU -> global average pool -> linear: what every method's
    BatchNorm passes and losses can be checked on in milliseconds."""

    def __init__(self, classes: int = CLASSES, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1))


def batch_labels() -> dict[str, torch.Tensor]:
    """Labels of the three batches: 2 a class; 5, 4, 3, 2, 2, 1, 1, 1, 1, 0; and Cao et al.'s
    exponential profile n_k = int(8 * 8^(-k/9)) (8 down to 1)."""
    counts = {"balanced": [2] * CLASSES, "unbalanced": [5, 4, 3, 2, 2, 1, 1, 1, 1, 0],
              "longtailed": [int(8 * 8 ** (-k / (CLASSES - 1))) for k in range(CLASSES)]}
    return {name: torch.repeat_interleave(torch.arange(CLASSES), torch.tensor(c)) for name, c in counts.items()}


def load(name: str) -> dict:
    return torch.load(GOLDEN / f"{name}.pt", weights_only=True)
