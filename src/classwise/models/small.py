"""Small networks for 28-px grey data: the Madry et al. MNIST CNN and LeNet-5."""

from torch import fx, nn

from .layout import flatten
from .registry import flat_features, register_model

fx.wrap("flatten")  # a call with its own backward in attacks/fold.py's traced copy


class _Sequential(nn.Module):
    def __init__(self, features: nn.Module, head: nn.Module):
        super().__init__()
        self.features, self.head = features, head

    def forward(self, x):
        return self.head(flatten(self.features(x)))


@register_model("mnist-cnn", "Madry et al. (2018) MNIST CNN: conv32-conv64 (5x5) + FC1024",
                published_params="3.27M", reference_shape=(1, 28, 28), min_size=4)
def mnist_cnn(num_classes=10, in_channels=1, input_size=28):
    features = nn.Sequential(
        nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
    )
    width = flat_features(features, in_channels, input_size)
    head = nn.Sequential(nn.Linear(width, 1024), nn.ReLU(inplace=True), nn.Linear(1024, num_classes))
    return _Sequential(features, head)


@register_model("lenet", "LeNet-5 (LeCun et al. 1998) with ReLU and max pooling",
                published_params=None, reference_shape=(1, 32, 32), min_size=20)
def lenet(num_classes=10, in_channels=1, input_size=32):
    # LeNet-5 was drawn for 32 px; pad 28-px MNIST-style inputs to that, as the paper did
    pad = 2 if input_size < 32 else 0
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=pad), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
    )
    width = flat_features(features, in_channels, input_size)
    head = nn.Sequential(nn.Linear(width, 120), nn.ReLU(inplace=True), nn.Linear(120, 84),
                         nn.ReLU(inplace=True), nn.Linear(84, num_classes))
    return _Sequential(features, head)
