"""No default class: blank images with a uniform target, and f's entropy on a blank image."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attribmap.errors import InputError
from attribmap.models import blank_entropy, blank_images
from attribmap.models.blank import blank_count
from attribmap.train.classifier import classification_loss, classification_step
from attribmap.train.i2c import I2CObjective, i2c_step

torch.set_num_threads(1)


def test_blank_images_are_grey_or_each_images_mean_colour():
    images = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).reshape(2, 3, 2, 2)
    blanks = blank_images(images, 5, ("grey", "mean"))
    assert blanks.shape == (5, 3, 2, 2)
    assert torch.equal(blanks[0], torch.zeros(3, 2, 2)) and torch.equal(blanks[2], torch.zeros(3, 2, 2))
    # image 0 channel c holds 4c .. 4c+3 (mean 4c + 1.5); image 1 holds 12 + 4c ..
    assert torch.equal(blanks[1], torch.tensor([1.5, 5.5, 9.5])[:, None, None].expand(3, 2, 2))
    assert torch.equal(blanks[3], torch.tensor([13.5, 17.5, 21.5])[:, None, None].expand(3, 2, 2))
    assert torch.equal(blanks[4], torch.zeros(3, 2, 2))
    assert [blank_count(16, f) for f in (0.0, 0.01, 0.125, 0.5)] == [0, 1, 2, 8]
    with pytest.raises(InputError, match="blank kinds must be made of"):
        blank_images(images, 1, ("noise",))


def test_the_loss_is_ce_on_real_images_and_uniform_target_ce_on_blanks():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [3.0, 0.0, -3.0]])
    labels = torch.tensor([0, 2])
    loss, metrics = classification_loss(logits, labels)
    log_p = logits.log_softmax(1)
    # two real terms -log p_y, one blank term -(1/3) sum_c log p_c, averaged over the 3 images
    expected = (-log_p[0, 0] - log_p[1, 2] - log_p[2].sum() / 3) / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert metrics["acc"].item() == 0.5 and metrics["blank_ce"].item() == pytest.approx(-log_p[2].mean().item())
    plain, _ = classification_loss(logits[:2], labels)
    assert plain.item() == pytest.approx(nn.functional.cross_entropy(logits[:2], labels).item())
    uniform, _ = classification_loss(torch.zeros(1, 4), torch.zeros(0, dtype=torch.long))
    assert uniform.item() == pytest.approx(math.log(4))   # the blank's minimum: the uniform prediction


class Recorder(nn.Module):
    """Logits = the first pixel of each image's channels (3 classes); remembers its input."""

    def forward(self, x):
        self.seen = x.detach().clone()
        return x[:, :, 0, 0]


def test_the_step_appends_the_blank_images_to_the_batch():
    torch.manual_seed(0)
    batch = {"image": torch.randn(8, 3, 4, 4), "label": torch.randint(0, 3, (8,))}
    module = Recorder()
    loss, _ = classification_step(0.25, ("grey", "mean"))(module, batch)
    assert module.seen.shape[0] == 10
    assert torch.equal(module.seen[:8], batch["image"]) and torch.equal(module.seen[8], torch.zeros(3, 4, 4))
    assert torch.allclose(module.seen[9], batch["image"][0].mean(dim=(1, 2))[:, None, None].expand(3, 4, 4))
    expected, _ = classification_loss(module.seen[:, :, 0, 0], batch["label"])
    assert loss.item() == pytest.approx(expected.item())
    classification_step(0.0)(module, batch)
    assert module.seen.shape[0] == 8


class TinyI2C(nn.Module):
    """forward_features of an I2C net over 1x1 maps: feat = the image's mean colour."""

    def forward_features(self, x):
        feat = x.mean(dim=(2, 3), keepdim=True)            # (N,3,1,1)
        return feat[:, :, 0, 0], feat, feat


class SeenByLoss(nn.Module):
    def forward(self, feat, class_maps, labels):
        self.n = feat.shape[0]
        return feat.sum() * 0, feat.sum() * 0


def test_i2c_blanks_enter_the_ce_only():
    criterion = SeenByLoss()
    objective = I2CObjective(TinyI2C(), criterion, 0.008, 0.001)
    batch = {"image": torch.randn(4, 3, 2, 2), "label": torch.tensor([1, 1, 0, 0])}
    total, metrics = i2c_step(0.5, ("grey",))(objective, batch)
    assert criterion.n == 4                                  # SC / GC see the 4 paired images only
    logits = torch.cat((batch["image"].mean(dim=(2, 3)), torch.zeros(2, 3)))
    expected, _ = classification_loss(logits, batch["label"])
    assert metrics["ce"].item() == pytest.approx(expected.item()) and total.item() == pytest.approx(expected.item())


class Fixed(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(logits))
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        return self.bias.expand(x.shape[0], -1) + 0 * x.mean()


def test_blank_entropy_by_hand_and_mode_restored():
    uniform = Fixed([0.0, 0.0, 0.0, 0.0]).train()
    assert blank_entropy(uniform, 32) == pytest.approx(math.log(4))
    assert blank_entropy(uniform, 32, normalized=True) == pytest.approx(1.0)
    assert uniform.training
    p = torch.tensor([0.7, 0.2, 0.1])
    skewed = Fixed(p.log().tolist()).eval()
    assert blank_entropy(skewed, 32) == pytest.approx(float(-(p * p.log()).sum()), rel=1e-6)
    assert not skewed.training
    assert blank_entropy(skewed, 32, kind="mean", images=torch.randn(2, 3, 8, 8)) == pytest.approx(
        float(-(p * p.log()).sum()), rel=1e-6)
    with pytest.raises(InputError, match="kind='mean' needs real images"):
        blank_entropy(skewed, 32, kind="mean")


def test_blank_entropy_imports_without_the_trainer():
    """attribmap.models (where blank_entropy lives) never imports attribmap.train."""
    import ast
    from pathlib import Path

    import attribmap.models

    for path in Path(attribmap.models.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "attribmap.train" or n.startswith("attribmap.train.") for n in names), path
