"""Typed gradient requests and the capture's cache of vector-Jacobian products."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import attribmap
from attribmap.gradients import SCORE, LossGradient, ScoreGradient, as_requests
from tests.reference.gradients import manual_grad


def test_requests_are_values_and_strings_convert():
    assert ScoreGradient() == SCORE and hash(LossGradient(10)) == hash(LossGradient(10.0))
    assert as_requests(["score", "loss@5", LossGradient(2.0)]) == {SCORE, LossGradient(5.0), LossGradient(2.0)}
    with pytest.raises(ValueError, match="unknown gradient need 'grad'"):
        as_requests(["grad"])
    with pytest.raises(ValueError, match="loss@<alpha>"):
        as_requests(["loss@ten"])


def test_grad_outputs():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    targets = torch.tensor([1, 0])
    assert torch.equal(SCORE.grad_output(logits, targets), F.one_hot(targets, 3).float())
    expected = torch.softmax(logits, 1) - 4.0 * F.one_hot(targets, 3).float()
    assert torch.allclose(LossGradient(4.0).grad_output(logits, targets), expected)


def test_capture_computes_each_request_once_in_one_batched_backward(tiny_model, tiny_images, monkeypatch):
    capture = attribmap.Explainer(tiny_model, "features").capture(tiny_images, target=[0, 1, 2])
    calls = []
    original = torch.autograd.grad

    def counting(*args, **kwargs):
        calls.append(kwargs.get("is_grads_batched", False))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting)
    capture.prepare({SCORE, LossGradient(3.0)}, "features")
    assert calls == [True]  # both vectors in one batched call
    g = capture.gradient(SCORE, "features")
    gl = capture.loss_grad("features", 3.0)
    assert calls == [True]  # served from the cache
    capture.loss_grad("features", 7.0)
    assert len(calls) == 2  # a new alpha is a new request
    monkeypatch.setattr(torch.autograd, "grad", original)
    target = torch.tensor([0, 1, 2])
    _, _, g_ref = manual_grad(tiny_model, tiny_model.features, tiny_images,
                              lambda z: F.one_hot(target, z.shape[1]).float())
    _, _, gl_ref = manual_grad(tiny_model, tiny_model.features, tiny_images,
                               lambda z: torch.softmax(z, 1) - 3.0 * F.one_hot(target, z.shape[1]).float())
    assert torch.allclose(g, g_ref, atol=1e-6) and torch.allclose(gl, gl_ref, atol=1e-6)
    with pytest.raises(TypeError, match="GradientRequest"):
        capture.prepare({"score"}, "features")
