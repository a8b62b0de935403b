"""I2C class maps read from the class-map layer."""
from __future__ import annotations

import torch

import attribmap


def test_i2c_reads_class_map_of_target():
    from torch import nn

    class FullyConv(nn.Module):
        class_map_layer = "head"

        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(3, 4, 3, padding=1)
            self.head = nn.Conv2d(4, 6, 1)

        def forward(self, x):
            return self.head(torch.relu(self.body(x))).mean(dim=(2, 3))

    torch.manual_seed(0)
    model = FullyConv().eval()
    x = torch.randn(2, 3, 8, 8)
    maps = attribmap.explain(model, x, method="i2c", target=[5, 1], raw=True)
    class_maps = model.head(torch.relu(model.body(x))).detach()
    assert torch.allclose(maps, torch.stack([class_maps[0, 5], class_maps[1, 1]]), atol=1e-6)
