"""ResNets with the CIFAR stem (3x3 conv, no max-pool), as used throughout the
adversarial-robustness literature (Madry et al., Rice et al., Wong et al.)."""

import torch.nn.functional as F
from torch import fx, nn

from .layout import global_avg_pool, subsample_pad
from .registry import register_model

# kept as calls with their own backward when attacks/fold.py traces a model
fx.wrap("global_avg_pool")
fx.wrap("subsample_pad")


# ReLU and the residual add run in place on BatchNorm's or a convolution's output, whose backward
# never reads it: the same values (tests/test_layout.py), and a ResNet-20 FGSM-RS step of 128
# images 0.389 s against 0.412 s on two cores (medians of ten fresh processes a side)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)).add_(self.shortcut(x)), inplace=True)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        return F.relu(self.bn3(self.conv3(out)).add_(self.shortcut(x)), inplace=True)


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x), inplace=True)
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        return self.conv2(F.relu(self.bn2(out), inplace=True)).add_(shortcut)


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, in_channels=3, widths=(64, 128, 256, 512),
                 preact=False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        # post-activation nets normalise after the stem, pre-activation ones before the head
        self.bn1 = None if preact else nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, num_blocks, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w * block.expansion
            layers.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*layers)
        self.bn_out = nn.BatchNorm2d(cin) if preact else None
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        if self.bn1 is not None:
            out = F.relu(self.bn1(out), inplace=True)
        out = self.layers(out)
        if self.bn_out is not None:
            out = F.relu(self.bn_out(out), inplace=True)
        return self.linear(global_avg_pool(out))


class _ShortcutA(nn.Module):
    """He et al.'s option A: subsample and zero-pad channels, no parameters."""

    def __init__(self, extra):
        super().__init__()
        self.extra = extra

    def forward(self, x):
        return subsample_pad(x, self.extra // 2, self.extra - self.extra // 2)


class CifarBlock(BasicBlock):
    def __init__(self, cin, cout, stride=1):
        super().__init__(cin, cout, stride)
        if stride != 1 or cin != cout:
            self.shortcut = _ShortcutA(cout - cin)


@register_model("resnet18", "ResNet-18, CIFAR stem (He et al. 2016; kuangliu/pytorch-cifar)",
                published_params="11.2M")
def resnet18(num_classes=10, in_channels=3, input_size=32):
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)


@register_model("resnet50", "ResNet-50 (bottleneck), CIFAR stem (He et al. 2016; kuangliu/pytorch-cifar)",
                published_params="23.5M")
def resnet50(num_classes=10, in_channels=3, input_size=32):
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels)


@register_model("preact-resnet18", "Pre-activation ResNet-18, CIFAR stem (He et al. 2016b; "
                "final BN-ReLU as in Wong et al. 2020)", published_params="11.2M")
def preact_resnet18(num_classes=10, in_channels=3, input_size=32):
    return ResNet(PreActBlock, [2, 2, 2, 2], num_classes, in_channels, preact=True)


@register_model("resnet20", "ResNet-20 for CIFAR, 16-32-64 channels, option-A shortcuts (He et al. 2016)",
                published_params="0.27M")
def resnet20(num_classes=10, in_channels=3, input_size=32):
    return ResNet(CifarBlock, [3, 3, 3], num_classes, in_channels, widths=(16, 32, 64))


@register_model("resnet32", "ResNet-32 for CIFAR, 16-32-64 channels, option-A shortcuts (He et al. 2016; the "
                "long-tail papers' CIFAR network, LDAM-DRW and class-balanced loss)", published_params="0.46M")
def resnet32(num_classes=10, in_channels=3, input_size=32):
    return ResNet(CifarBlock, [5, 5, 5], num_classes, in_channels, widths=(16, 32, 64))
