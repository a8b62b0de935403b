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

CASES = {
    "inception_v3": ("Mixed_6e", 160, False),
    "resnet50": ("layer4", 96, True),
    "vgg16": ("features.29", 64, False),
}
# keep captum's integration-type methods cheap here; the defaults are captum's own otherwise
OPTIONS = {"captum:IntegratedGradients": {"n_steps": 4}}


def _build(name):
    torch.manual_seed(0)
    kwargs = {"init_weights": False, "aux_logits": False} if name == "inception_v3" else {}
    return getattr(torchvision.models, name)(weights=None, **kwargs).eval()


@pytest.mark.parametrize("arch", list(CASES))
def test_every_registered_method_runs(arch):
    layer, size, cam_ok = CASES[arch]
    model = _build(arch)
    x = torch.randn(2, 3, size, size)
    names = [n for n in attribmap.methods() if n != "i2c"]
    ex = attribmap.Explainer(model, layer=layer)
    shared = [n for n in names if not n.startswith("captum:") and (cam_ok or n != "cam")]
    maps = ex.explain_many(x, shared)
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
        assert torch.isfinite(m).all() and m.min() >= 0 and m.max() <= 1, n
    with pytest.raises(attribmap.MethodError, match="class-map layer"):
        ex.explain(x, "i2c")
