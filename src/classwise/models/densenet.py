"""DenseNet-121/169 (Huang et al. 2017) with a CIFAR stem: torchvision's dense blocks and
transitions, a 3x3 stride-1 stem instead of the 7x7 conv + max-pool meant for 224 px."""

from torch import nn

from .registry import register_model


def _small_stem(net: nn.Module, in_channels: int) -> nn.Module:
    out = net.features.conv0.out_channels
    net.features.conv0 = nn.Conv2d(in_channels, out, 3, 1, 1, bias=False)
    net.features.pool0 = nn.Identity()
    return net


def _densenet(blocks, num_classes, in_channels):
    from torchvision.models.densenet import DenseNet

    net = DenseNet(growth_rate=32, block_config=blocks, num_init_features=64,
                               num_classes=num_classes)
    return _small_stem(net, in_channels)


@register_model("densenet121", "DenseNet-121, growth 32, CIFAR stem (torchvision blocks)")
def densenet121(num_classes=10, in_channels=3, input_size=32):
    return _densenet((6, 12, 24, 16), num_classes, in_channels)


@register_model("densenet169", "DenseNet-169, growth 32, CIFAR stem (torchvision blocks)")
def densenet169(num_classes=10, in_channels=3, input_size=32):
    return _densenet((6, 12, 32, 32), num_classes, in_channels)
