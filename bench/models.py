"""The benchmark networks, defined once for ember and once for PyTorch with the same layout.

W3: ResNet-50 in torchvision's v1.5 layout (stride on the 3x3 convolution of each bottleneck),
25,557,032 trainable parameters. W4: Inception-v1 (GoogLeNet) in torchvision's layout without
auxiliary heads (its third branch uses a 3x3 convolution, as torchvision does), 6,624,904.
(To move to the model zoo when it exists.)
"""
import ember
from ember.layers import (
    Activation,
    Add,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
)

RESNET50_STAGES = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]
INCEPTION_V1 = {  # name: (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj)
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


def mlp():
    return ember.Sequential([Flatten(input_shape=(28, 28, 1)), Dense(512, activation="relu"),
                             Dense(256, activation="relu"), Dense(10, activation="softmax")])


def lenet5():
    return ember.Sequential([
        Conv2D(6, 5, padding="same", activation="relu", input_shape=(28, 28, 1)), MaxPooling2D(2),
        Conv2D(16, 5, activation="relu"), MaxPooling2D(2), Flatten(),
        Dense(120, activation="relu"), Dense(84, activation="relu"), Dense(10, activation="softmax")])


def _conv_bn(x, filters, k, stride=1, relu=True, eps=1e-5):
    x = Conv2D(filters, k, strides=stride, padding="same", use_bias=False)(x)
    x = BatchNormalization(epsilon=eps, momentum=0.9)(x)
    return Activation("relu")(x) if relu else x


def resnet50(classes=1000):
    inp = Input(shape=(224, 224, 3))
    x = _conv_bn(inp, 64, 7, 2)
    x = MaxPooling2D(3, 2, padding="same")(x)
    for filters, blocks, stride in RESNET50_STAGES:
        for b in range(blocks):
            s = stride if b == 0 else 1
            y = _conv_bn(x, filters, 1)
            y = _conv_bn(y, filters, 3, s)
            y = _conv_bn(y, filters * 4, 1, relu=False)
            shortcut = _conv_bn(x, filters * 4, 1, s, relu=False) if b == 0 else x
            x = Activation("relu")(Add()([y, shortcut]))
    x = GlobalAveragePooling2D()(x)
    return ember.Model(inp, Dense(classes)(x))


def googlenet(classes=1000):
    def block(x, spec):
        _, c1, r3, c3, r5, c5, pp = spec
        b1 = _conv_bn(x, c1, 1, eps=1e-3)
        b2 = _conv_bn(_conv_bn(x, r3, 1, eps=1e-3), c3, 3, eps=1e-3)
        b3 = _conv_bn(_conv_bn(x, r5, 1, eps=1e-3), c5, 3, eps=1e-3)
        b4 = _conv_bn(MaxPooling2D(3, 1, padding="same")(x), pp, 1, eps=1e-3)
        return Concatenate()([b1, b2, b3, b4])

    inp = Input(shape=(224, 224, 3))
    x = _conv_bn(inp, 64, 7, 2, eps=1e-3)
    x = MaxPooling2D(3, 2, padding="same")(x)
    x = _conv_bn(x, 64, 1, eps=1e-3)
    x = _conv_bn(x, 192, 3, eps=1e-3)
    x = MaxPooling2D(3, 2, padding="same")(x)
    x = block(block(x, INCEPTION_V1["3a"]), INCEPTION_V1["3b"])
    x = MaxPooling2D(3, 2, padding="same")(x)
    for name in ("4a", "4b", "4c", "4d", "4e"):
        x = block(x, INCEPTION_V1[name])
    x = MaxPooling2D(2, 2, padding="same")(x)
    x = block(block(x, INCEPTION_V1["5a"]), INCEPTION_V1["5b"])
    x = Dropout(0.2)(GlobalAveragePooling2D()(x))
    return ember.Model(inp, Dense(classes)(x))


# ---- the same networks in PyTorch (NCHW), built only when torch is installed ----
def torch_models():
    import torch.nn as nn

    class ConvBN(nn.Sequential):
        def __init__(self, cin, cout, k, stride=1, relu=True, eps=1e-5):
            layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout, eps=eps)]
            super().__init__(*(layers + ([nn.ReLU(inplace=True)] if relu else [])))

    class Bottleneck(nn.Module):
        def __init__(self, cin, filters, stride, downsample):
            super().__init__()
            self.body = nn.Sequential(ConvBN(cin, filters, 1), ConvBN(filters, filters, 3, stride),
                                      ConvBN(filters, filters * 4, 1, relu=False))
            self.down = ConvBN(cin, filters * 4, 1, stride, relu=False) if downsample else None
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.body(x) + (self.down(x) if self.down is not None else x))

    def resnet50_torch(classes=1000):
        layers, cin = [ConvBN(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
        for filters, blocks, stride in RESNET50_STAGES:
            for b in range(blocks):
                layers.append(Bottleneck(cin, filters, stride if b == 0 else 1, b == 0))
                cin = filters * 4
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))

    class Inception(nn.Module):
        def __init__(self, spec):
            super().__init__()
            cin, c1, r3, c3, r5, c5, pp = spec
            self.b1 = ConvBN(cin, c1, 1, eps=1e-3)
            self.b2 = nn.Sequential(ConvBN(cin, r3, 1, eps=1e-3), ConvBN(r3, c3, 3, eps=1e-3))
            self.b3 = nn.Sequential(ConvBN(cin, r5, 1, eps=1e-3), ConvBN(r5, c5, 3, eps=1e-3))
            self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), ConvBN(cin, pp, 1, eps=1e-3))

        def forward(self, x):
            import torch

            return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)

    def googlenet_torch(classes=1000):
        s = INCEPTION_V1
        return nn.Sequential(
            ConvBN(3, 64, 7, 2, eps=1e-3), nn.MaxPool2d(3, 2, ceil_mode=True), ConvBN(64, 64, 1, eps=1e-3),
            ConvBN(64, 192, 3, eps=1e-3), nn.MaxPool2d(3, 2, ceil_mode=True), Inception(s["3a"]), Inception(s["3b"]),
            nn.MaxPool2d(3, 2, ceil_mode=True), *[Inception(s[k]) for k in ("4a", "4b", "4c", "4d", "4e")],
            nn.MaxPool2d(2, 2, ceil_mode=True), Inception(s["5a"]), Inception(s["5b"]), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(1024, classes))

    def mlp_torch():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                             nn.Linear(256, 10))

    def lenet5_torch():
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                             nn.ReLU(), nn.Linear(84, 10))

    return {"W1": mlp_torch, "W2": lenet5_torch, "W3": resnet50_torch, "W4": googlenet_torch}
