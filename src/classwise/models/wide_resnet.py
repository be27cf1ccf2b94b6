"""Wide ResNets (Zagoruyko & Komodakis 2016), the workhorse of the robustness literature."""

import torch.nn.functional as F
from torch import fx, nn

from .layout import global_avg_pool
from .registry import register_model

fx.wrap("global_avg_pool")  # a call with its own backward in attacks/fold.py's traced copy


class WideBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None if cin == cout and stride == 1 else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        # in place, as resnet.py's blocks (the outputs of BatchNorm and a convolution)
        out = F.relu(self.bn1(x), inplace=True)
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        return self.conv2(F.relu(self.bn2(out), inplace=True)).add_(shortcut)


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen: int, num_classes=10, in_channels=3):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError("WideResNet depth must be 6n + 4")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths[1:]):
            for j in range(n):
                blocks.append(WideBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = F.relu(self.bn(self.blocks(self.conv1(x))), inplace=True)
        return self.fc(global_avg_pool(out))


@register_model("wrn-28-10", "WideResNet-28-10 (Zagoruyko & Komodakis 2016)", published_params="36.5M")
def wrn_28_10(num_classes=10, in_channels=3, input_size=32):
    return WideResNet(28, 10, num_classes, in_channels)


@register_model("wrn-34-10", "WideResNet-34-10 (Madry et al. 2018; TRADES)", published_params="46.2M")
def wrn_34_10(num_classes=10, in_channels=3, input_size=32):
    return WideResNet(34, 10, num_classes, in_channels)
