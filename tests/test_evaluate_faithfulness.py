"""Deletion, insertion, average drop and ROAD against independent computations.

* deletion / insertion: a hand-made model whose target probability is a sigmoid of a
  weighted pixel sum, so every step of the curve is known in closed form;
* average drop / increase and ROAD: pytorch-grad-cam's ``CamMultImageConfidenceChange`` /
  ``DropInConfidence`` / ``IncreaseInConfidence`` and its ROAD building blocks, on the same
  model and maps (softmax targets; ROAD without noise, where its pixel counts equal ours).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from attribmap.errors import AttribmapError
from attribmap.evaluate import ROAD, AverageDrop, Deletion, Evaluator, Framer, Insertion, ModelInputs
from attribmap.evaluate.imputation import NEIGHBOUR_WEIGHTS, linear_imputation, noisy_linear_imputation


class _SigmoidOfWeightedSum(nn.Module):
    """logits = [0, scale * sum(w * x)]: p(class 1) = sigmoid(scale * sum(w * x))."""

    def __init__(self, weights: torch.Tensor, scale: float) -> None:
        super().__init__()
        self.register_buffer("weights", weights)
        self.scale = scale

    def forward(self, x):
        total = self.scale * (x * self.weights).sum(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(total), total], dim=1)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _blur_reference(images: np.ndarray, sigma=5.0, size=11) -> np.ndarray:
    offsets = np.arange(size) - size // 2
    g = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    kernel = np.outer(g, g)
    return np.stack([np.stack([ndimage.convolve(c, kernel, mode="constant") for c in image]) for image in images])


def _hand_made_case(count=3, channels=2, height=6, width=5, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(count, channels, height, width)).astype(np.float32)
    weights = rng.normal(size=(channels, height, width)).astype(np.float32)
    raw = rng.normal(size=(count, height, width))  # distinct values: one ranking
    model = _SigmoidOfWeightedSum(torch.from_numpy(weights), 0.3)
    return images, weights, raw, model


@pytest.mark.parametrize("kind, baseline", [("deletion", "zeros"), ("deletion", "blur"), ("insertion", "blur"),
                                            ("insertion", "zeros")])
def test_deletion_and_insertion_equal_the_closed_form(kind, baseline):
    images, weights, raw, model = _hand_made_case()
    steps = 7
    count, _, height, width = images.shape
    pixels = height * width
    base = np.zeros_like(images) if baseline == "zeros" else _blur_reference(images.astype(np.float64))
    start, end = (images, base) if kind == "deletion" else (base, images)
    counts = np.arange(steps + 1) * pixels // steps
    expected_curves = np.empty((count, steps + 1))
    for b in range(count):
        order = np.argsort(-raw[b].ravel(), kind="stable")
        for s, k in enumerate(counts):
            changed = np.zeros(pixels, dtype=bool)
            changed[order[:k]] = True
            mixed = np.where(changed.reshape(height, width), end[b], start[b]).astype(np.float64)
            expected_curves[b, s] = _sigmoid(0.3 * (mixed * weights).sum())
    expected_auc = np.mean([np.trapezoid(curve, counts / pixels) for curve in expected_curves])

    metric = (Deletion if kind == "deletion" else Insertion)(steps=steps, baseline=baseline)
    inputs = ModelInputs(model, torch.from_numpy(images), np.ones(count, dtype=np.int64), batch_size=4)
    result = metric.update(Framer(8).frame(raw, inputs=inputs)).compute()
    key = "Deletion" if kind == "deletion" else "Insertion"
    assert result[key] == pytest.approx(expected_auc, abs=1e-6)
    assert np.allclose(result[f"{kind}_score"], expected_curves.mean(axis=0), atol=1e-6)


def test_maps_are_ranked_at_the_input_resolution_like_opencv_bicubic():
    images, weights, _, model = _hand_made_case(count=2, height=12, width=10, seed=1)
    raw = np.random.default_rng(2).normal(size=(2, 4, 3))
    frame = Framer(16).frame(raw, inputs=ModelInputs(model, torch.from_numpy(images), [1, 1]))
    for b in range(2):
        resized = cv2.resize(raw[b], (10, 12), interpolation=cv2.INTER_CUBIC)
        expected = (resized - resized.min()) / (resized - resized.min()).max()
        assert np.allclose(frame.input_maps()[b], expected, atol=1e-12)
        assert np.array_equal(frame.pixel_order()[b], np.argsort(-frame.input_maps()[b].ravel(), kind="stable"))


def _small_cnn(seed=0, classes=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, classes)).eval()


def _cnn_case(count=4, size=10, seed=0):
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.normal(size=(count, 3, size, size)).astype(np.float32))
    maps = rng.random((count, size, size))  # distinct values
    maps = (maps - maps.min(axis=(1, 2), keepdims=True)) / np.ptp(maps, axis=(1, 2), keepdims=True)
    targets = rng.integers(0, 3, count)
    return _small_cnn(seed), images, maps, targets


# pytorch-grad-cam's own code calls numpy functions on tensors (a numpy 2 deprecation warning)
_THEIR_WARNING = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


@_THEIR_WARNING
def test_average_drop_and_increase_equal_pytorch_grad_cam():
    metrics = pytest.importorskip("pytorch_grad_cam.metrics.cam_mult_image")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model, images, maps, targets = _cnn_case(count=6)
    cams = maps.astype(np.float32)
    wanted = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    drop_theirs = metrics.DropInConfidence()(images, cams, wanted, model)
    increase_theirs = metrics.IncreaseInConfidence()(images, cams, wanted, model)
    with torch.no_grad():
        clean = torch.softmax(model(images), 1)[torch.arange(6), torch.from_numpy(targets)].numpy()
    ours = AverageDrop().update(Framer(10).frame(maps, inputs=ModelInputs(model, images, targets))).compute()
    assert ours["AverageDrop"] == pytest.approx(100 * np.mean(drop_theirs / clean), rel=1e-5)
    assert ours["IncreaseInConfidence"] == pytest.approx(100 * np.mean(increase_theirs))
    assert 0 < ours["IncreaseInConfidence"] < 100  # the case has both kinds of images


@_THEIR_WARNING
@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_road_without_noise_equals_pytorch_grad_cam(order):
    pgc = pytest.importorskip("pytorch_grad_cam.metrics.perturbation_confidence")
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model, images, maps, targets = _cnn_case(count=3)
    percents = (20, 50, 80)
    remove = pgc.RemoveMostRelevantFirst if order == "morf" else pgc.RemoveLeastRelevantFirst
    wanted = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]
    theirs = []
    for p in percents:  # their percentile keeps p' % of the pixels: ours removes 100 - p'
        metric = pgc.PerturbationConfidenceMetric(remove(100 - p, NoisyLinearImputer(noise=0.0)))
        theirs.append(metric(images, maps.astype(np.float32), wanted, model, return_diff=False).mean())
    ours = ROAD(percents=percents, noise=0.0).update(Framer(10).frame(maps, inputs=ModelInputs(model, images,
                                                                                             targets))).compute()
    assert np.allclose(ours[f"road_{order}"], theirs, atol=1e-6)
    assert np.ptp(theirs) > 1e-3  # the removal changes the scores: the comparison has teeth
    assert ours["ROAD_MoRF" if order == "morf" else "ROAD_LeRF"] == pytest.approx(np.mean(theirs), abs=1e-6)


@_THEIR_WARNING
def test_linear_imputation_solves_the_neighbour_equations_and_equals_pytorch_grad_cam():
    road = pytest.importorskip("pytorch_grad_cam.metrics.road")
    rng = np.random.default_rng(5)
    image = rng.normal(size=(3, 9, 11)).astype(np.float32)
    removed = rng.random((9, 11)) < 0.6
    filled = linear_imputation(image, removed)
    assert np.array_equal(filled[:, ~removed], image[:, ~removed])
    for y, x in zip(*np.nonzero(removed)):  # each filled pixel is the weighted mean of its neighbours
        total, weight_sum = 0.0, 0.0
        for (dy, dx), weight in NEIGHBOUR_WEIGHTS:
            if 0 <= y + dy < 9 and 0 <= x + dx < 11:
                total = total + weight * filled[:, y + dy, x + dx]
                weight_sum += weight
        assert np.allclose(filled[:, y, x], total / weight_sum, atol=1e-10)
    theirs = road.NoisyLinearImputer(noise=0.0)(torch.from_numpy(image), torch.from_numpy((~removed).astype(np.float32)))
    assert np.allclose(filled, theirs.numpy(), atol=1e-5)


def test_imputation_noise_is_seeded_and_only_on_removed_pixels():
    rng = np.random.default_rng(6)
    image = rng.normal(size=(2, 16, 16))
    removed = rng.random((16, 16)) < 0.5
    clean = linear_imputation(image, removed)
    first = noisy_linear_imputation(image, removed, 0.05, np.random.default_rng(1))
    again = noisy_linear_imputation(image, removed, 0.05, np.random.default_rng(1))
    other = noisy_linear_imputation(image, removed, 0.05, np.random.default_rng(2))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.array_equal(first[:, ~removed], image[:, ~removed])
    assert 0.03 < (first - clean)[:, removed].std() < 0.07
    with pytest.raises(AttribmapError, match="kept pixel"):
        linear_imputation(image, np.ones((16, 16), dtype=bool))


def test_batches_and_chunks_do_not_change_the_numbers():
    model, images, maps, targets = _cnn_case(count=5)
    names = ["deletion", "insertion", "drop", "road"]
    options = {"steps": 4, "road.percents": (30, 70), "road.noise": 0.05}
    whole = Evaluator(names, image_size=10, options=options)
    whole.update(maps, inputs=ModelInputs(model, images, targets, batch_size=64))
    split = Evaluator(names, image_size=10, options=options)
    for part in (slice(0, 2), slice(2, 5)):  # the evaluator counts the images: same ROAD noise
        split.update(maps[part], inputs=ModelInputs(model, images[part], targets[part], batch_size=3,
                                                    channels_last=True))
    ours, theirs = whole.scores(), split.scores()
    for key in ("Deletion", "Insertion", "AverageDrop", "ROAD_MoRF", "ROAD_LeRF"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key


def test_shared_forwards_are_run_once_and_the_model_state_is_restored():
    model, images, maps, targets = _cnn_case(count=4)
    model.train()
    forwarded = []
    inputs = ModelInputs(model, images, targets, batch_size=5, progress=forwarded.append)
    evaluator = Evaluator(["deletion", "insertion", "drop"], image_size=10,
                          options={"steps": 6, "insertion.baseline": "blur"})
    evaluator.update(maps, inputs=inputs)
    # clean 4 + zero image 1 + blurred 4 + deletion 4 * 5 + insertion 4 * 5 + masked 4
    assert sum(forwarded) == 4 + 1 + 4 + 20 + 20 + 4
    assert model.training and all(m.training for m in model.modules())


def test_faithfulness_errors():
    with pytest.raises(AttribmapError, match="baseline"):
        Deletion(baseline="mean")
    with pytest.raises(AttribmapError, match="steps"):
        Insertion(steps=0)
    with pytest.raises(AttribmapError, match="percents"):
        ROAD(percents=(0, 50))
    model, images, maps, targets = _cnn_case(count=2)
    with pytest.raises(AttribmapError, match="class indices"):
        ModelInputs(model, images, [0.5, 1.0])
    for bad in (0, 2.0, True):
        with pytest.raises(AttribmapError, match=f"batch_size must be a positive int or None; got {bad!r}"):
            ModelInputs(model, images, targets, batch_size=bad)
    with pytest.raises(AttribmapError, match="2 maps but 1 input images"):
        Framer(10).frame(maps, inputs=ModelInputs(model, images[:1], targets[:1]))


def test_the_default_chunk_follows_the_device():
    from attribmap.evaluate.perturbation import default_batch_size

    assert default_batch_size("cpu") == 16 and default_batch_size(torch.device("cuda", 1)) == 64
    assert default_batch_size("meta") == 16
    model, images, _, targets = _cnn_case(count=2)
    assert ModelInputs(model, images, targets).batch_size == 16
    assert ModelInputs(model, images, targets, batch_size=5).batch_size == 5
