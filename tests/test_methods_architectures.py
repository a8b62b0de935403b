"""Every registered method on the three reference torchvision architectures (batch of 2).

``cam`` is defined only where the tapped layer feeds global average pooling and a linear
classifier (PROTOCOL.md); on inception_v3 at Mixed_6e and vgg16 at features.29 it must
raise its clear error instead, and it must run on resnet50 at layer4.
"""
from __future__ import annotations

import pytest
import torch
import torchvision

import attribmap
from attribmap.methods import lookup

CASES = {
    "inception_v3": ("Mixed_6e", 160, False),
    "resnet50": ("layer4", 96, True),
    "vgg16": ("features.29", 64, False),
}
# keep captum's integration-type methods cheap here; the defaults are captum's own otherwise
OPTIONS = {"captum:IntegratedGradients": {"n_steps": 4}}
# methods that score one extra forward pass per channel (or per noisy copy): thousands of passes
# of these full-size networks; they run on reduced models in their own test files
# (test_methods_scorecam.py, test_methods_ablation.py, test_methods_smoothgradcampp.py)
PER_CHANNEL_PASSES = {"scorecam", "sscam", "iscam", "ablationcam", "smoothgradcampp"}
# Methods whose map is legitimately all zero on these random-weight models: at inception_v3's
# Mixed_6e (torch's default init) sum_k alpha_k F_k is negative everywhere for both images, so
# Grad-CAM's final ReLU gives 0, and so do captum's LayerGradCam (the same formula) and
# GuidedGradCam (guided backprop times that map). Anything else all-zero is a failure.
# Finer-CAM is Grad-CAM of a contrastive score and ShapleyCAM with the logit score is Grad-CAM on
# this piecewise-linear head (its Hessian term is 0): the same sign, the same zeros.
ZERO_OK = {("inception_v3", "gradcam"), ("inception_v3", "captum:LayerGradCam"),
           ("inception_v3", "captum:GuidedGradCam"), ("inception_v3", "finercam"), ("inception_v3", "shapleycam")}
# XGrad-CAM's weighted sum (other weights than Grad-CAM's) is negative everywhere for the second
# image only: that image's map is all zero, the first one's is a real map.
ZERO_IMAGES_OK = {("inception_v3", "xgradcam"): (1,)}


def _build(name):
    torch.manual_seed(0)
    kwargs = {"init_weights": False, "aux_logits": False} if name == "inception_v3" else {}
    return getattr(torchvision.models, name)(weights=None, **kwargs).eval()


@pytest.mark.parametrize("arch", list(CASES))
def test_every_registered_method_runs(arch):
    layer, size, cam_ok = CASES[arch]
    model = _build(arch)
    x = torch.randn(2, 3, size, size)
    names = [n for n, e in ((n, lookup(n)) for n in attribmap.methods())
             if n != "i2c" and e.extractor is not None and n not in PER_CHANNEL_PASSES]
    ex = attribmap.Explainer(model, layer=layer)
    shared = [n for n in names if not n.startswith("captum:") and (cam_ok or n != "cam")]
    maps = ex.explain_many(x, shared)
    raws = ex.explain_many(x, shared, raw=True)
    for n in names:
        if n.startswith("captum:"):
            maps[n] = ex.explain(x, n, **OPTIONS.get(n, {}))
    for n in names:
        if n == "cam" and not cam_ok:
            with pytest.raises(attribmap.MethodError, match="global average pooling"):
                ex.explain(x, "cam")
            continue
        m = maps[n]
        assert m.shape == (2, size, size), n
        assert torch.isfinite(m).all(), n
        if (arch, n) in ZERO_OK:
            assert torch.equal(m, torch.zeros_like(m)), n
            continue
        if (arch, n) in ZERO_IMAGES_OK:
            zero = ZERO_IMAGES_OK[(arch, n)]
            assert all(torch.equal(m[i], torch.zeros_like(m[i])) for i in zero), n
            real = m[[i for i in range(m.shape[0]) if i not in zero]]
            assert real.amin(dim=(1, 2)).tolist() == [0.0] * len(real), n
            assert real.amax(dim=(1, 2)).tolist() == [1.0] * len(real), n
            continue
        # a real map of every image: min-max normalized, so exactly 0 at its minimum and 1
        # at its maximum (an all-zero or constant map, the documented failure output, fails)
        spans = (m.amin(dim=(1, 2)).tolist(), m.amax(dim=(1, 2)).tolist())
        assert spans == ([0.0, 0.0], [1.0, 1.0]), (n, spans)
        assert not torch.equal(m[0], m[1]), n  # two different random images give different maps
    h, w = raws["gradcam"].shape[-2:]
    if cam_ok:  # the pixel-level selection branch is CAM / (h w) on a GAP -> linear head
        assert torch.allclose(raws["dgl-psb"] * h * w, raws["cam"], rtol=1e-4, atol=1e-5)
    with pytest.raises(attribmap.MethodError, match="class-map layer"):
        ex.explain(x, "i2c")
