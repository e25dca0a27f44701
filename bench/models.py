"""The benchmark networks: ember's from the model zoo, and the same layouts in PyTorch.

W3: ResNet-50 in torchvision's v1.5 layout (stride on the 3x3 convolution of each bottleneck),
25,557,032 trainable parameters. W4: Inception-v1 (GoogLeNet) in torchvision's layout without
auxiliary heads (its third branch uses a 3x3 convolution, as torchvision does), 6,624,904.
W5: the Keras IMDB LSTM example without dropout: Embedding(20000, 128) over 80 tokens, LSTM(128),
Dense(1, sigmoid); 2,691,713 trainable parameters (PyTorch's LSTM has a second bias vector: 2,692,225).
"""
# NOTE: moving W3/W4 onto the zoo (which pads strided convolutions symmetrically, as torch does, with
# a ZeroPadding2D) kept inference speed: bench/run.py on 2 shared cores, zoo vs the previous hand-built
# networks: W3 22.5 vs 22.9 img/s, W4 51.6 vs 53.2 img/s; best of 12 alternating in-process batches:
# W3 22.6 vs 23.3, W4 53.2 vs 52.9 (the machine's noise is larger than these differences).
import ember
from ember.layers import LSTM, Dense, Embedding, Flatten
from ember.zoo.models import InceptionV1, LeNet5, ResNet50
from ember.zoo.models.inception import INCEPTION_V1 as _INCEPTION_V1

# the image workloads' input (height, width, channels), classes and batch
IMAGES = {"W1": ((28, 28, 1), 10, 128), "W2": ((28, 28, 1), 10, 128), "W3": ((224, 224, 3), 1000, 16),
          "W4": ((224, 224, 3), 1000, 16)}
RESNET50_STAGES = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]
# name: (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj), for the PyTorch twin below
_IN_CHANNELS = {"3a": 192, "3b": 256, "4a": 480, "4b": 512, "4c": 512, "4d": 512, "4e": 528, "5a": 832, "5b": 832}
INCEPTION_V1 = {k: (_IN_CHANNELS[k],) + spec for k, spec in _INCEPTION_V1.items()}


def mlp():
    return ember.Sequential([Flatten(input_shape=(28, 28, 1)), Dense(512, activation="relu"),
                             Dense(256, activation="relu"), Dense(10, activation="softmax")])


def lenet5():
    return LeNet5()


IMDB = {"vocabulary": 20000, "length": 80, "embedding": 128, "units": 128, "batch": 32}


def imdb_lstm():
    return ember.Sequential([Embedding(IMDB["vocabulary"], IMDB["embedding"], input_length=IMDB["length"]),
                             LSTM(IMDB["units"]), Dense(1, activation="sigmoid")])


def resnet50(classes=1000):
    return ResNet50(num_classes=classes)


def googlenet(classes=1000):
    return InceptionV1(num_classes=classes)


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

    class IMDBLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(IMDB["vocabulary"], IMDB["embedding"])
            self.lstm = nn.LSTM(IMDB["embedding"], IMDB["units"], batch_first=True)
            self.out = nn.Linear(IMDB["units"], 1)

        def forward(self, tokens):
            _, (h, _) = self.lstm(self.embed(tokens))
            return self.out(h[-1])  # logits: the loss applies the sigmoid

    return {"W1": mlp_torch, "W2": lenet5_torch, "W3": resnet50_torch, "W4": googlenet_torch, "W5": IMDBLSTM}


def torch_inputs(workload, batch, channels_last=False):
    """(model, x, y) of an image workload in PyTorch on random data (NCHW; channels_last moves both)."""
    import torch

    (h, w, c), classes, _ = IMAGES[workload]
    model = torch_models()[workload]()
    x = torch.randn(batch, c, h, w)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x, torch.randint(0, classes, (batch,))


def torch_sgd_step(model, x, y):
    """One training step of ``model`` on (x, y) as the benches run it: SGD momentum 0.9, cross-entropy."""
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return step
