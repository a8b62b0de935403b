"""explain() leaves the model exactly as found and is safe under threads and grad modes."""
from __future__ import annotations

import threading

import pytest
import torch

import attribmap
from tests.conftest import TinyGapNet, assert_same_state, model_state


def test_hundred_calls_leave_state_unchanged(tiny_model, tiny_images):
    for p in tiny_model.parameters():
        p.grad = torch.full_like(p, 0.5)  # pre-existing grads must survive untouched
    tiny_model.features[0].weight.requires_grad_(False)
    before = model_state(tiny_model)
    for i in range(100):
        attribmap.explain(tiny_model, tiny_images, method=["gradcam", "dgl", "cam"][i % 3], layer="features")
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
    reference = attribmap.explain(tiny_model, tiny_images, method="dgl", layer="features")
    ctx = torch.no_grad() if context == "no_grad" else torch.inference_mode()
    with ctx:
        images = tiny_images.clone()  # an inference tensor under inference_mode
        maps = attribmap.explain(tiny_model, images, method="dgl", layer="features")
        assert not torch.is_grad_enabled()  # the caller's grad mode is restored
    assert torch.allclose(maps, reference, atol=1e-6)


def test_frozen_parameters(tiny_images):
    model = TinyGapNet().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    maps = attribmap.explain(model, tiny_images, method="gradcampp", layer="features")
    assert maps.shape == (3, 16, 16)
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())


def test_threads_get_the_maps_of_sequential_calls():
    torch.manual_seed(0)
    model = TinyGapNet(num_classes=5, width=16).eval()
    gen = torch.Generator().manual_seed(3)
    jobs = [(torch.randn(2, 3, 24, 24, generator=gen), [i % 5, (i + 2) % 5], m)
            for i, m in enumerate(["gradcam", "dgl", "gradcampp", "cam"] * 3)]
    sequential = [attribmap.explain(model, x, method=m, layer="features", target=t) for x, t, m in jobs]
    results = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(4)

    def worker(tid):
        try:
            barrier.wait()
            for _ in range(3):
                for j in range(tid, len(jobs), 4):
                    x, t, m = jobs[j]
                    results[j] = attribmap.explain(model, x, method=m, layer="features", target=t)
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
