"""Per-call forward hooks: removed on exit and on errors, blind to other threads."""
from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from attribmap.hooks import forward_hooks
from attribmap.layers import auto_layer
from tests.conftest import TinyGapNet


def test_hooks_are_removed_also_when_the_block_raises():
    layer = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="boom"):
        with forward_hooks({layer: lambda m, i, o: None}):
            assert len(layer._forward_hooks) == 1
            raise RuntimeError("boom")
    assert len(layer._forward_hooks) == 0


def test_a_hook_ignores_forward_passes_of_other_threads():
    layer = nn.Linear(2, 2)
    seen = []
    with forward_hooks({layer: lambda m, i, o: seen.append(threading.get_ident())}):
        layer(torch.zeros(1, 2))
        other = threading.Thread(target=lambda: layer(torch.zeros(1, 2)))
        other.start()
        other.join()
    assert seen == [threading.get_ident()]


def test_auto_layer_leaves_no_hook_and_ignores_other_threads(monkeypatch):
    model = TinyGapNet().eval()
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            model(torch.zeros(1, 3, 8, 8))  # forward passes of another thread, at another size

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        for size in range(16, 26, 2):  # a new input size each time: no cached choice
            assert auto_layer(model, torch.zeros(1, 3, size, size)) == "features"
    finally:
        stop.set()
        worker.join()
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0
