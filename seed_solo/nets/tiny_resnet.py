"""A ResNet-10 for 28-64 px images on a CPU: one BasicBlock per stage, no max-pool."""

from __future__ import annotations

from torch import nn


class _BasicBlock(nn.Module):
    def __init__(self, inp: int, out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != out:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False),
                                          nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(y)) + self.shortcut(x)).relu()


class TinyResNet(nn.Module):
    """A ResNet of one BasicBlock per stage, 3x3 stride-1 stem and no max-pool, for 28-64 px.

    Widths ``width * (1, 2, 4, 8)``; (B, 3, H, W) -> (B, 8 * width) pooled features.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        widths = [width * m for m in (1, 2, 4, 8)]
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        layers, inp = [], width
        for i, w in enumerate(widths):
            layers.append(_BasicBlock(inp, w, 1 if i == 0 else 2))
            inp = w
        self.layers = nn.Sequential(*layers)
        self.num_features = widths[-1]

    def forward(self, x):
        return self.layers(self.stem(x)).mean(dim=(2, 3))  # BxF
