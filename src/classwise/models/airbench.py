"""A small fast CIFAR network after Keller Jordan's airbench ("94% on CIFAR-10 in 3.29 seconds
on a single GPU", 2024): a 2x2 stem conv, then three groups of conv-BN-ReLU, max-pool,
conv-BN-ReLU (widths 64-256-256 at full width), a global max-pool and a linear head. Wide,
shallow convolutions run at a higher share of a CPU's peak than ResNet-20's 16-channel ones,
which is why the `quick` presets of the 32-px colour data sets use it (at half width).

What is left out of airbench's recipe: its frozen patch-whitening stem (the stem here is an
ordinary learned conv), GELU (ReLU here), the 1/9 scale of the logits that goes with its
learning-rate convention, its BatchNorm momentum and frozen scales, lookahead, test-time
flipping and its optimiser split; each conv is followed directly by its BatchNorm (the pool
comes after the activation), so that eval-mode attacks fold BN into the conv (attacks/fold.py)."""

from torch import nn

from .registry import register_model


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class AirbenchNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, widths=(64, 256, 256), stem: int = 24):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, stem, 2, bias=True), nn.ReLU(inplace=True)]
        cin = stem
        for w in widths:
            layers += [*_conv_bn(cin, w), nn.MaxPool2d(2), *_conv_bn(w, w)]
            cin = w
        self.features = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.linear = nn.Linear(cin, num_classes, bias=False)

    def forward(self, x):
        return self.linear(self.features(x))


@register_model("airbench", "airbench's CIFAR net (K. Jordan, '94% on CIFAR-10 in 3.29 seconds on a single GPU', "
                "2024), widths 64-256-256, learned stem", min_size=16)
def airbench(num_classes=10, in_channels=3, input_size=32):
    return AirbenchNet(num_classes, in_channels)


@register_model("airbench-half", "airbench's CIFAR net at half width (32-128-128): a quarter of its FLOPs",
                min_size=16)
def airbench_half(num_classes=10, in_channels=3, input_size=32):
    return AirbenchNet(num_classes, in_channels, widths=(32, 128, 128), stem=24)
