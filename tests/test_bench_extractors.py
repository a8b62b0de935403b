"""The benchmark's timing groups follow each method's declared cost."""
from __future__ import annotations

import torch

import attribmap
from attribmap.bench.extractors import SHARED_GROUP, ExtractorSuite
from tests.conftest import TinyGapNet


def test_extra_pass_methods_are_timed_on_their_own_and_give_the_shared_maps():
    torch.manual_seed(0)
    model = TinyGapNet().eval()
    images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 3, 1])
    names = ["cam", "gradcam", "scorecam", "fullgrad"]
    suite = ExtractorSuite(model, "features", names)
    assert [suite.group_of(n) for n in names] == [SHARED_GROUP, SHARED_GROUP, "scorecam", "fullgrad"]
    batch = suite.run(images, labels)
    assert set(batch.seconds) == {SHARED_GROUP, "scorecam", "fullgrad"}
    together = attribmap.Explainer(model, "features").explain_many(images, names, target=labels, raw=True)
    for name in names:
        assert torch.equal(batch.maps[name], together[name]), name
    correct = (model(images).argmax(1) == labels)
    for name in names:
        assert torch.equal(batch.correct[name], correct), name
