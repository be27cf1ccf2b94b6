"""GoogLeNet and Inception-v3 (Szegedy et al. 2015, 2016) for small images: torchvision's
inception modules behind a 3x3 stride-1 stem (no early down-sampling), no auxiliary heads,
so the model returns logits only, in training and in attacks alike."""

from torch import nn

from .registry import register_model


@register_model("googlenet", "GoogLeNet (Inception-v1), CIFAR stem, torchvision modules, no aux heads")
def googlenet(num_classes=10, in_channels=3, input_size=32):
    from torchvision.models.googlenet import BasicConv2d as GoogLeNetConv
    from torchvision.models.googlenet import GoogLeNet

    net = GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=True)
    # the CIFAR stem: one 3x3 conv to the 192 channels inception3a expects, full resolution
    net.conv1 = GoogLeNetConv(in_channels, 192, kernel_size=3, padding=1)
    net.maxpool1 = net.conv2 = net.conv3 = net.maxpool2 = nn.Identity()
    return net


@register_model("inception-v3", "Inception-v3, stride-1 stem for small images, torchvision modules, no aux head")
def inception_v3(num_classes=10, in_channels=3, input_size=32):
    from torchvision.models.inception import BasicConv2d as InceptionConv
    from torchvision.models.inception import Inception3

    net = Inception3(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=True)
    conv = InceptionConv
    net.Conv2d_1a_3x3 = conv(in_channels, 32, kernel_size=3, padding=1)
    net.Conv2d_2a_3x3 = conv(32, 32, kernel_size=3, padding=1)
    net.Conv2d_4a_3x3 = conv(80, 192, kernel_size=3, padding=1)
    net.maxpool1 = net.maxpool2 = nn.Identity()
    return net
