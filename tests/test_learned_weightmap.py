"""attribmap.learned.weightmap: method I/II and triplet losses, stopping score, extractor."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attribmap.errors import InputError
from attribmap.learned import (WeightMapExtractor, method1_loss, method2_loss, stopping_score,
                               triplet_loss)

torch.set_num_threads(1)


class SumLogits(nn.Module):
    """f(x) = [sum(x), 0] per image: a classifier whose outputs are easy to do by hand."""

    def forward(self, x):
        s = x.flatten(1).sum(1)
        return torch.stack((s, torch.zeros_like(s)), dim=1)


def test_method1_by_hand():
    images = torch.ones(1, 3, 2, 2)                    # f(I) = [12, 0]
    masks = torch.full((1, 1, 2, 2), 0.25, requires_grad=True)   # f(I*M) = [3, 0]
    loss, parts = method1_loss(SumLogits(), images, masks, lam=2.0)
    p1 = 1 / (1 + math.exp(-12))
    logq1 = 3 - math.log(math.exp(3) + 1)
    logq0 = -math.log(math.exp(3) + 1)
    ce = -(p1 * logq1 + (1 - p1) * logq0)
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert parts["reg"].item() == pytest.approx(0.25)
    assert loss.item() == pytest.approx(ce + 2.0 * 0.25, rel=1e-5)
    loss.backward()
    assert masks.grad is not None and masks.grad.abs().sum() > 0
    hard, parts_h = method1_loss(SumLogits(), images, masks.detach(), hard_target=True)
    assert parts_h["ce"].item() == pytest.approx(-logq1, rel=1e-5)   # argmax = class 0


def test_method1_matches_torch_soft_cross_entropy():
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5)).requires_grad_(False)
    images = torch.randn(3, 3, 4, 4)
    masks = torch.rand(3, 1, 4, 4)
    loss, parts = method1_loss(clf, images, masks, lam=1.0)
    target = clf(images).softmax(1)
    ce = F.cross_entropy(clf(images * masks), target)        # probability targets
    torch.testing.assert_close(parts["ce"], ce)
    torch.testing.assert_close(loss, ce + masks.mean())
    _, parts_h = method1_loss(clf, images, masks, hard_target=True)
    torch.testing.assert_close(parts_h["ce"],
                               F.cross_entropy(clf(images * masks), target.argmax(1)))
    with pytest.raises(InputError, match=r"masks must be \(N,1,H,W\)"):
        method1_loss(clf, images, masks[:, :, :2])


def test_triplet_loss_by_hand_and_against_torch():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    n = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    # row 0: max(5 - 1 + 1, 0) = 5 ; row 1: max(1 - 3 + 1, 0) = 0
    assert triplet_loss(a, p, n).item() == pytest.approx(2.5)
    assert triplet_loss(a, p, n, margin=3.0).item() == pytest.approx((7 + 1) / 2)
    torch.manual_seed(1)
    a, p, n = torch.randn(3, 6, 8).unbind(0)
    ref = F.triplet_margin_loss(a, p, n, margin=1.0, p=2, eps=0.0)
    torch.testing.assert_close(triplet_loss(a, p, n), ref)
    with pytest.raises(InputError, match="one shape"):
        triplet_loss(a, p[:2], n)


def test_method2_against_direct_computation():
    torch.manual_seed(2)
    embed = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5)).requires_grad_(False)
    gen = nn.Sequential(nn.Conv2d(3, 1, 1), nn.Sigmoid())
    ia, ip, i_n = torch.randn(3, 2, 3, 4, 4).unbind(0)
    loss, parts = method2_loss(embed, gen, ia, ip, i_n, lam=0.5)
    ma, mp, mn = gen(ia), gen(ip), gen(i_n)

    def tri(x, y, z):
        return F.triplet_margin_loss(x, y, z, margin=1.0, eps=0.0)

    inner = tri(embed(ia), embed(ma * ia), embed((1 - ma) * ia))
    outer = tri(embed(ma * ia), embed(mp * ip), embed(mn * i_n))
    torch.testing.assert_close(parts["inner"], inner.detach())
    torch.testing.assert_close(parts["outer"], outer.detach())
    torch.testing.assert_close(parts["reg"], ma.mean().detach())
    torch.testing.assert_close(loss, inner + outer + 0.5 * ma.mean())
    loss.backward()
    assert gen[0].weight.grad is not None and gen[0].weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- stopping score


def test_stopping_score_single_blob_is_one_even_on_the_border():
    m = np.zeros((1, 10, 10))
    m[0, 7:10, 6:10] = 0.8        # touches the bottom-right border: box (6,7,9,9), inclusive
    assert stopping_score(m)[0] == pytest.approx(1.0)


def test_stopping_score_two_blobs_by_hand():
    m = np.zeros((1, 12, 12))
    m[0, 1:4, 1:5] = 0.8          # 3x4 blob, mass 9.6, largest contour
    m[0, 8:10, 8:10] = 1.0        # 2x2 blob, mass 4.0, outside the big blob's box (1,1,5,4)
    s = stopping_score(m)
    assert isinstance(s, np.ndarray) and s.dtype == np.float64
    assert s[0] == pytest.approx(9.6 / 13.6)


def test_stopping_score_zeroes_values_below_a_tenth_of_the_max():
    m = np.full((2, 10, 10), 0.09)   # background: 0.09 < max/10 = 0.1 -> removed
    m[:, 2:5, 2:5] = 1.0
    m[1, 8, 8] = 0.2                 # >= 0.1: kept, outside the box
    s = stopping_score(m)
    assert s[0] == pytest.approx(1.0)
    assert s[1] == pytest.approx(9.0 / 9.2)


def test_stopping_score_degenerate_and_tensor_input():
    maps = torch.zeros(3, 1, 8, 8)
    maps[1, 0, 2:4, 2:4] = 0.5
    maps[2, 0, 0, 0] = float("nan")
    s = stopping_score(maps)
    assert isinstance(s, torch.Tensor) and s.shape == (3,) and s.dtype == torch.float64
    assert s.tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(InputError, match=r"\(N,H,W\)"):
        stopping_score(np.zeros((8, 8)))


def _reference_score(m: np.ndarray) -> float:
    """Independent implementation of S with OpenCV's border following."""
    cv2 = pytest.importorskip("cv2")
    m_hat = np.where(m >= m.max() / 10, m, 0.0)
    contours = cv2.findContours((m_hat > 0).astype(np.uint8), cv2.RETR_TREE,
                                cv2.CHAIN_APPROX_SIMPLE)[-2]
    best = max(contours, key=cv2.contourArea)
    x, y, w, h = cv2.boundingRect(best)
    hgt, wid = m.shape
    x1, y1 = min(x + w, wid - 1), min(y + h, hgt - 1)
    return float(m_hat[y:y1 + 1, x:x1 + 1].sum() / m_hat.sum())


def test_stopping_score_matches_an_opencv_reference():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:48]
    maps = []
    for _ in range(6):
        m = np.zeros((40, 48))
        for _ in range(3):   # gaussian bumps of different widths and heights
            cy, cx = rng.uniform(0, 40), rng.uniform(0, 48)
            sig, amp = rng.uniform(2, 7), rng.uniform(0.2, 1.0)
            m += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sig ** 2))
        maps.append(m / m.max() * 0.97)
    maps = np.stack(maps)
    ours = stopping_score(maps)
    ref = np.array([_reference_score(m) for m in maps])
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert (ref < 1).any()   # the set includes maps whose box misses some mass


# ---------------------------------------------------------------- extractor


def test_weightmap_extractor_uses_eval_mode_and_restores_state():
    from attribmap.methods import Extractor
    from attribmap.models import WeightMapGenerator

    torch.manual_seed(0)
    gen = WeightMapGenerator("resnet18").train()
    ex = WeightMapExtractor(gen)
    assert isinstance(ex, Extractor) and ex.name == "weightmap" and ex.description
    stats = [b.clone() for b in gen.buffers()]
    x = torch.randn(2, 3, 32, 32)
    raw = ex(x, None, None)
    assert gen.training and all(m.training for m in gen.modules())
    assert all(torch.equal(a, b) for a, b in zip(stats, gen.buffers()))   # BN stats untouched
    assert raw.shape == (2, 32, 32) and not raw.requires_grad
    with torch.no_grad():
        expected = gen.eval()(x)[:, 0]
    torch.testing.assert_close(raw, expected)
    assert WeightMapExtractor(gen, name="wm-I").name == "wm-I"


def test_weightmap_extractor_through_explain():
    import attribmap
    from attribmap.models import WeightMapGenerator, build_model

    torch.manual_seed(0)
    gen = WeightMapGenerator("resnet18").eval()
    model = build_model("resnet18_small", 3).eval()
    x = torch.randn(2, 3, 64, 64)
    maps = attribmap.explain(model, x, method=WeightMapExtractor(gen))
    assert maps.shape == (2, 64, 64)
    with torch.no_grad():
        m = gen(x)[:, 0]
    lo = m.flatten(1).min(1).values[:, None, None]
    hi = m.flatten(1).max(1).values[:, None, None]
    torch.testing.assert_close(maps, (m - lo) / (hi - lo), rtol=1e-4, atol=1e-5)


def test_weightmap_extractor_spends_no_classifier_forward():
    """A class-agnostic extractor must not run the classifier to find top-1 targets."""
    import torch

    import attribmap
    from attribmap.learned import WeightMapExtractor
    from attribmap.models import WeightMapGenerator
    from tests.conftest import TinyGapNet

    torch.manual_seed(0)
    classifier = TinyGapNet().eval()
    calls = []
    classifier.fc.register_forward_hook(lambda *a: calls.append(1))
    maps = attribmap.explain(classifier, torch.randn(2, 3, 64, 64), method=WeightMapExtractor(WeightMapGenerator()))
    assert maps.shape == (2, 64, 64) and calls == []
