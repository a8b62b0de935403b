"""attribmap.learned.I2CLoss: seeds, SC/GC losses and the centre bank, against hand values."""
from __future__ import annotations

import math

import pytest
import torch

from attribmap.errors import AttribmapError
from attribmap.learned import I2CLoss, seed_scores, select_seeds

torch.set_num_threads(1)


def _hand_batch():
    """4 images (2 pairs), C=2 channels, 3x3 maps, 3 classes; seeds known by construction.

    pair 0 (images 0,1; class 1):
      image 0: class-1 map 10 at pixel 1, 9 at pixel 8 -> normalised 1.0, 0.9 -> seeds [1, 8]
      image 1: class-1 map 5 at pixel 4 only         -> one candidate -> seeds [4, 4]
    pair 1 (images 2,3; class 0):
      image 2: class-0 map = 0..8 ramp -> i/8 > 0.7 for i = 6,7,8 -> first two [6, 7]
      image 3: class-0 map constant -> no pixel > 0.7 -> argmax (pixel 0) -> [0, 0]
    Other class channels hold large decoys that must be ignored.
    """
    feat = torch.zeros(4, 2, 9)
    feat[0, :, 1] = torch.tensor([1.0, 0.0])
    feat[0, :, 8] = torch.tensor([0.0, 2.0])
    feat[1, :, 4] = torch.tensor([4.0, 3.0])
    feat[2, :, 6] = torch.tensor([1.0, 1.0])
    feat[2, :, 7] = torch.tensor([2.0, 2.0])
    feat[3, :, 0] = torch.tensor([1.0, -2.0])
    maps = torch.zeros(4, 3, 9)
    maps[0, 1, 1], maps[0, 1, 8] = 10.0, 9.0
    maps[1, 1, 4] = 5.0
    maps[2, 0] = torch.arange(9.0)
    maps[3, 0] = 2.0
    maps[:, 2] = 100.0 * torch.arange(9.0).flip(0)   # decoy class, never a label
    maps[0, 0, 0] = maps[1, 0, 0] = 50.0             # decoys in non-label channels
    maps[2, 1, 3] = maps[3, 1, 5] = 50.0
    labels = torch.tensor([1, 1, 0, 0])
    return feat.reshape(4, 2, 3, 3), maps.reshape(4, 3, 3, 3), labels


SC_EXPECTED = (math.sqrt(18) + math.sqrt(17) + 3.0 + math.sqrt(17)) / 4
CENTRE_1 = torch.tensor([2.25, 2.0])     # mean of (1,0), (0,2), (4,3), (4,3)
CENTRE_0 = torch.tensor([1.25, -0.25])   # mean of (1,1), (2,2), (1,-2), (1,-2)


def test_seed_selection_first_k_by_hand():
    feat, maps, labels = _hand_batch()
    scores = seed_scores(maps, labels, (3, 3))
    idx = select_seeds(scores, k=2, threshold=0.7, sampling="first")
    assert idx.tolist() == [[1, 8], [4, 4], [6, 7], [0, 0]]
    idx3 = select_seeds(scores, k=3, threshold=0.7, sampling="first")
    assert idx3.tolist() == [[1, 8, 1], [4, 4, 4], [6, 7, 8], [0, 0, 0]]


def test_losses_and_bank_by_hand():
    feat, maps, labels = _hand_batch()
    loss = I2CLoss(num_classes=3, feat_dim=2, k=2, seed_sampling="first")
    l_sc, l_gc = loss(feat, maps, labels)
    assert l_sc.item() == pytest.approx(SC_EXPECTED, rel=1e-6)
    assert l_gc.item() == 0.0                      # first sighting of both classes: skipped
    torch.testing.assert_close(loss.centers[1], CENTRE_1)   # eta = exp(0) = 1 copies c_i
    torch.testing.assert_close(loss.centers[0], CENTRE_0)
    assert loss.counts.tolist() == [1, 1, 0]
    assert loss.centers[2].abs().sum() == 0

    # second step with doubled features: the pair centres double
    l_sc2, l_gc2 = loss(2 * feat, maps, labels)
    assert l_sc2.item() == pytest.approx(2 * SC_EXPECTED, rel=1e-6)
    d1 = math.hypot(2.25, 2.0)          # ||C[1] - 2 c_1|| = ||c_1||
    d0 = math.hypot(1.25, 0.25)
    assert l_gc2.item() == pytest.approx((d1 + d0) / 2, rel=1e-6)
    eta = math.exp(-0.002 * 1)
    torch.testing.assert_close(loss.centers[1], (1 - eta) * CENTRE_1 + eta * 2 * CENTRE_1)
    torch.testing.assert_close(loss.centers[0], (1 - eta) * CENTRE_0 + eta * 2 * CENTRE_0)
    assert loss.counts.tolist() == [2, 2, 0]


def test_bank_update_formula_over_many_steps_and_alpha():
    torch.manual_seed(0)
    alpha = 0.3
    loss = I2CLoss(num_classes=2, feat_dim=4, k=1, alpha=alpha, seed_sampling="first")
    ref = torch.zeros(4)
    maps = torch.zeros(2, 2, 1, 1)
    for t in range(5):
        feat = torch.randn(2, 4, 1, 1)
        loss(feat, maps, torch.tensor([1, 1]))
        c = feat[:, :, 0, 0].mean(0)
        eta = math.exp(-alpha * t)
        ref = (1 - eta) * ref + eta * c
        torch.testing.assert_close(loss.centers[1], ref)
    assert loss.counts.tolist() == [0, 5]


def test_gc_uses_bank_before_update_and_skips_only_unseen_classes():
    feat, maps, labels = _hand_batch()
    loss = I2CLoss(num_classes=3, feat_dim=2, k=2, seed_sampling="first")
    loss.centers[1] = torch.tensor([2.25, 5.0])       # class 1 seen before, class 0 not
    loss.counts[1] = 3
    _, l_gc = loss(feat, maps, labels)
    assert l_gc.item() == pytest.approx(3.0, rel=1e-6)   # only pair 0: ||(0, 3)||
    eta = math.exp(-0.002 * 3)
    torch.testing.assert_close(loss.centers[1],
                               (1 - eta) * torch.tensor([2.25, 5.0]) + eta * CENTRE_1)
    torch.testing.assert_close(loss.centers[0], CENTRE_0)


def _three_pair_batch():
    """6 images (pairs of classes 0, 1, 0), C=2, 1x3 maps; seeds = pixels 1 and 2 of every image.

    The label class map is [0, 8, 10] (min-max 0, 0.8, 1: pixels 1 and 2 pass 0.7, the first
    K=2 in raster order); the other class holds a decoy. Seed vectors (pixel 1, pixel 2):
      class 0: img0 (1,0) (3,0)   img1 (1,2) (3,2)   img4 (5,0) (5,4)   img5 (5,2) (5,2)
      class 1: img2 (0,4) (0,8)   img3 (2,4) (2,0)
    """
    seeds = [[(1, 0), (3, 0)], [(1, 2), (3, 2)], [(0, 4), (0, 8)], [(2, 4), (2, 0)],
             [(5, 0), (5, 4)], [(5, 2), (5, 2)]]
    feat = torch.full((6, 2, 1, 3), 100.0)          # pixel 0 is never a seed
    for b, (v1, v2) in enumerate(seeds):
        feat[b, :, 0, 1] = torch.tensor(v1, dtype=torch.float)
        feat[b, :, 0, 2] = torch.tensor(v2, dtype=torch.float)
    labels = torch.tensor([0, 0, 1, 1, 0, 0])
    maps = torch.zeros(6, 2, 1, 3)
    maps[torch.arange(6), labels, 0] = torch.tensor([0.0, 8.0, 10.0])
    maps[torch.arange(6), 1 - labels, 0] = torch.tensor([10.0, 0.0, 0.0])
    return feat, maps, labels


def test_bank_moves_once_per_batch_and_class_to_the_mean_of_its_seed_vectors():
    """PROTOCOL.md section 2 / the I2C slides: a^y = mean of the K |B^y| seed vectors of y."""
    feat, maps, labels = _three_pair_batch()
    loss = I2CLoss(num_classes=2, feat_dim=2, k=2, alpha=0.002, seed_sampling="first")
    loss.centers[0] = torch.tensor([2.0, 5.0])       # class 0 seen 4 times, class 1 never
    loss.counts[0] = 4
    l_sc, l_gc = loss(feat, maps, labels)
    # L_SC: pair (0,1): 2, 2; pair (2,3): 2, sqrt(68); pair (4,5): 2, 2
    assert l_sc.item() == pytest.approx((10 + math.sqrt(68)) / 6, rel=1e-6)
    # L_GC: only the class-0 pairs; centres (2,1) and (5,2) against C[0] = (2,5) before the update
    assert l_gc.item() == pytest.approx((4 + math.sqrt(18)) / 2, rel=1e-6)
    # a^0 = mean of 8 vectors = (28/8, 12/8); a^1 = mean of 4 vectors = (4/4, 16/4)
    eta = math.exp(-0.002 * 4)
    torch.testing.assert_close(loss.centers[0], (1 - eta) * torch.tensor([2.0, 5.0])
                               + eta * torch.tensor([3.5, 1.5]))
    torch.testing.assert_close(loss.centers[1], torch.tensor([1.0, 4.0]))   # eta = 1: a copy
    assert loss.counts.tolist() == [5, 1]                                   # one update each


def test_update_false_leaves_bank_untouched():
    feat, maps, labels = _hand_batch()
    loss = I2CLoss(3, 2, k=2, seed_sampling="first")
    loss(feat, maps, labels, update=False)
    assert loss.counts.sum() == 0 and loss.centers.abs().sum() == 0


def test_gradients_flow_to_features_only():
    feat, maps, labels = _hand_batch()
    feat = feat.clone().requires_grad_(True)
    maps = maps.clone().requires_grad_(True)
    loss = I2CLoss(3, 2, k=2, seed_sampling="first")
    loss(feat.detach(), maps.detach(), labels)        # make both classes seen
    l_sc, l_gc = loss(feat, maps, labels)
    (l_sc + l_gc).backward()
    assert feat.grad is not None and torch.isfinite(feat.grad).all()
    assert feat.grad.abs().sum() > 0
    assert maps.grad is None
    assert not loss.centers.requires_grad


def test_random_seeds_are_candidates_distinct_and_reproducible():
    scores = torch.zeros(2, 20)
    scores[0, [2, 5, 7, 11, 13]] = 1.0
    scores[1, [4]] = 1.0
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a = select_seeds(scores, 3, 0.7, "random", g1)
    b = select_seeds(scores, 3, 0.7, "random", g2)
    assert torch.equal(a, b)
    assert set(a[0].tolist()) <= {2, 5, 7, 11, 13} and len(set(a[0].tolist())) == 3
    assert a[1].tolist() == [4, 4, 4]
    draws = {tuple(select_seeds(scores, 3, 0.7, "random", g1)[0].tolist()) for _ in range(20)}
    assert len(draws) > 1


def test_class_map_is_resized_to_feature_resolution():
    maps = torch.zeros(1, 1, 2, 2)
    maps[0, 0, 0, 1] = 1.0     # top-right
    scores = seed_scores(maps, torch.tensor([0]), (4, 4)).reshape(4, 4)
    # bilinear, align_corners=False: output i samples (i + 0.5)/2 - 0.5, clamped to [0, 1]
    # -> weight of source row 0: 1, .75, .25, 0 ; of source column 1: 0, .25, .75, 1
    expected = torch.outer(torch.tensor([1, 0.75, 0.25, 0]), torch.tensor([0, 0.25, 0.75, 1]))
    torch.testing.assert_close(scores, expected)   # already spans [0, 1]: min-max is identity
    idx = select_seeds(scores.reshape(1, 16), k=3, threshold=0.7, sampling="first")
    assert idx.tolist() == [[2, 3, 7]]   # (0,2)=.75, (0,3)=1, (1,2)=.5625 (no), (1,3)=.75


def test_state_dict_keeps_bank():
    feat, maps, labels = _hand_batch()
    loss = I2CLoss(3, 2, k=2, seed_sampling="first")
    loss(feat, maps, labels)
    state = loss.state_dict()
    assert set(state) == {"centers", "counts"} and state["counts"].dtype == torch.long
    fresh = I2CLoss(3, 2, k=2)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.centers, loss.centers)
    assert fresh.counts.tolist() == [1, 1, 0]


def test_bad_inputs_raise_clear_errors():
    feat, maps, labels = _hand_batch()
    loss = I2CLoss(3, 2)
    with pytest.raises(AttribmapError, match="pair 1 has labels 0 and 2"):
        loss(feat, maps, torch.tensor([1, 1, 0, 2]))
    with pytest.raises(AttribmapError, match="even"):
        loss(feat[:3], maps[:3], labels[:3])
    with pytest.raises(AttribmapError, match=r"feat must be \(N,5,h,w\)"):
        I2CLoss(3, 5)(feat, maps, labels)
    with pytest.raises(AttribmapError, match=r"labels must lie in \[0, 3\)"):
        loss(feat, maps, torch.tensor([3, 3, 0, 0]))
    with pytest.raises(AttribmapError, match="seed_sampling"):
        I2CLoss(3, 2, seed_sampling="top")
    with pytest.raises(AttribmapError, match="threshold"):
        I2CLoss(3, 2, threshold=1.5)


def test_end_to_end_with_small_i2c_model():
    from attribmap.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18_small_i2c", num_classes=3, head_channels=16).train()
    loss = I2CLoss(3, feat_dim=512, seed_sampling="random", generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 64, 64)
    y = torch.tensor([2, 2, 0, 0])
    for _ in range(2):
        logits, feat, class_maps = model.forward_features(x)
        l_sc, l_gc = loss(feat, class_maps, y)
        total = torch.nn.functional.cross_entropy(logits, y) + 0.008 * l_sc + 0.001 * l_gc
        model.zero_grad()
        total.backward()
    assert l_gc.item() > 0 and l_sc.item() > 0
    assert model.layer1[0].conv1.weight.grad is not None
    assert loss.counts.tolist() == [2, 0, 2]
