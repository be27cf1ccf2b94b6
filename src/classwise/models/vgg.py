"""VGG-16/19 with batch norm for small images (Simonyan & Zisserman 2015; the CIFAR form
with one 512->classes layer, as in kuangliu/pytorch-cifar)."""

from torch import nn

from .registry import register_model

_CFG = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, depth: int, num_classes=10, in_channels=3):
        super().__init__()
        layers, cin = [], in_channels
        for v in _CFG[depth]:
            if v == "M":
                # ceil_mode keeps 28-px inputs alive through five poolings (28->14->7->4->2->1)
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


@register_model("vgg16", "VGG-16 with batch norm, CIFAR head (512 -> classes)", published_params="14.7M")
def vgg16(num_classes=10, in_channels=3, input_size=32):
    return VGG(16, num_classes, in_channels)


@register_model("vgg19", "VGG-19 with batch norm, CIFAR head (512 -> classes)", published_params="20.0M")
def vgg19(num_classes=10, in_channels=3, input_size=32):
    return VGG(19, num_classes, in_channels)
