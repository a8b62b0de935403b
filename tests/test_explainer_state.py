"""explain() leaves the model exactly as found and is safe under threads and grad modes."""
from __future__ import annotations

import threading

import pytest
import torch

import attribmap
from attribmap.methods import CAM_FAMILY, Method, lookup, registered_names
from tests.conftest import TinyGapNet, assert_same_state, model_state

#: Options that keep every registered post-hoc method small on TinyGapNet ("features").
SMALL = {"sscam": ":n_samples=2", "iscam": ":n_samples=2", "smoothgradcampp": ":n_samples=2",
         "refinecam": ":layers=features.1"}


def posthoc_specs():
    """Every registered post-hoc method that runs on a plain classifier (i2c needs an I2C head)."""
    names = [n for n in registered_names()
             if isinstance(lookup(n).extractor, Method) and n != "i2c"]
    return [n + SMALL.get(n, "") for n in names]


def test_the_state_tests_cover_the_whole_cam_family():
    covered = {spec.split(":")[0] for spec in posthoc_specs()}
    assert set(CAM_FAMILY) <= covered


def test_hundred_calls_leave_state_unchanged(tiny_model, tiny_images):
    for p in tiny_model.parameters():
        p.grad = torch.full_like(p, 0.5)  # pre-existing grads must survive untouched
    tiny_model.features[0].weight.requires_grad_(False)
    before = model_state(tiny_model)
    specs = posthoc_specs()
    ex = attribmap.Explainer(tiny_model, layer="features")
    for i in range(100):
        ex.explain_many(tiny_images, [specs[i % len(specs)]])
    assert_same_state(before, model_state(tiny_model))


@pytest.mark.parametrize("spec", posthoc_specs())
def test_every_method_leaves_state_unchanged_and_keeps_the_device(tiny_model, tiny_images, spec):
    for p in tiny_model.parameters():
        p.grad = torch.full_like(p, 0.25)
    tiny_model.fc.weight.requires_grad_(False)
    before = model_state(tiny_model)
    maps = attribmap.Explainer(tiny_model, layer="features").explain_many(tiny_images, [spec])[spec]
    assert maps.shape == (3, 16, 16) and maps.device == tiny_images.device
    assert torch.isfinite(maps).all() and float(maps.max()) > 0
    assert_same_state(before, model_state(tiny_model))


def test_state_restored_after_a_call_that_raises(tiny_model, tiny_images):
    before = model_state(tiny_model)
    with pytest.raises(attribmap.TargetError):
        attribmap.explain(tiny_model, tiny_images, method="gradcam", layer="features", target=99)
    with pytest.raises(attribmap.LayerError, match="4-D"):
        attribmap.explain(tiny_model, tiny_images, method="gradcam", layer="fc")

    class Boom(Exception):
        pass

    def exploding_method(capture, layer):
        raise Boom("mid-way")

    attribmap.register_method("test-explodes", exploding_method, "raises", needs={"score"})
    try:
        with pytest.raises(Boom):
            attribmap.explain(tiny_model, tiny_images, method="test-explodes", layer="features")
    finally:
        attribmap.unregister_method("test-explodes")
    # an exception raised inside the model's own forward
    tiny_model.fc.register_forward_pre_hook(lambda m, i: (_ for _ in ()).throw(Boom("in forward")))
    hooks_with_boom = model_state(tiny_model)["hooks"]
    with pytest.raises(Boom):
        attribmap.explain(tiny_model, tiny_images, method="gradcam", layer="features")
    assert model_state(tiny_model)["hooks"] == hooks_with_boom == before["hooks"] + 1


@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_works_inside_no_grad_and_inference_mode(tiny_model, tiny_images, context):
    specs = posthoc_specs()
    ex = attribmap.Explainer(tiny_model, layer="features")
    reference = ex.explain_many(tiny_images, specs)
    ctx = torch.no_grad() if context == "no_grad" else torch.inference_mode()
    with ctx:
        images = tiny_images.clone()  # an inference tensor under inference_mode
        maps = ex.explain_many(images, specs)
        assert not torch.is_grad_enabled()  # the caller's grad mode is restored
    for spec in specs:
        assert torch.allclose(maps[spec], reference[spec], atol=1e-6), spec


def test_frozen_parameters(tiny_images):
    model = TinyGapNet().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    maps = attribmap.Explainer(model, layer="features").explain_many(tiny_images, posthoc_specs())
    assert all(m.shape == (3, 16, 16) for m in maps.values())
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())


def test_threads_get_the_maps_of_sequential_calls():
    torch.manual_seed(0)
    model = TinyGapNet(num_classes=5, width=16).eval()
    gen = torch.Generator().manual_seed(3)
    ex = attribmap.Explainer(model, layer="features")
    jobs = [(torch.randn(2, 3, 24, 24, generator=gen), [i % 5, (i + 2) % 5], m)
            for i, m in enumerate(posthoc_specs() * 2)]
    # the sequential calls come first: ablationcam's one-time torch.fx trace of the model is not
    # safe while other threads run forward passes (docs/methods/ablation.rst), later calls are
    sequential = [ex.explain_many(x, [m], target=t)[m] for x, t, m in jobs]
    results = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(4)

    def worker(tid):
        try:
            barrier.wait()
            for _ in range(3):
                for j in range(tid, len(jobs), 4):
                    x, t, m = jobs[j]
                    results[j] = ex.explain_many(x, [m], target=t)[m]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for got, want in zip(results, sequential):
        assert torch.equal(got, want)
    assert model_state(model)["hooks"] == 0
