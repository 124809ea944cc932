"""The state classifier's network: three conv blocks and a linear layer over the whole crop.

The last layer sees the feature map flattened, not pooled: where the lit lamp sits (top red, middle yellow,
bottom green in a German head) is the cue, and global pooling would throw it away.
"""

from __future__ import annotations

import torch
from torch import nn


class StateNet(nn.Module):
    """Crops ``(n, 3, h, w)`` in [0, 1] (h, w multiples of 4) -> logits ``(n, states)``."""

    def __init__(self, states: int, hw: tuple[int, int], width: int = 16) -> None:
        super().__init__()
        h, w = hw
        if h % 4 or w % 4:
            raise ValueError(f"crop size {hw}: expected a height and width that are multiples of 4")

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(*block(3, width), nn.MaxPool2d(2), *block(width, 2 * width), nn.MaxPool2d(2),
                                      *block(2 * width, 2 * width))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(2 * width * (h // 4) * (w // 4), states))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of each crop."""
        return self.head(self.features(x))
