"""Extractor specs NAME[@LAYER][=CHECKPOINT][:KEY=VALUE...]."""
from __future__ import annotations

import pytest

from attribmap.errors import MethodError
from attribmap.methods import ExtractorSpec, split_specs


@pytest.mark.parametrize("text,name,layer,checkpoint,options", [
    ("gradcam", "gradcam", None, None, ()),
    ("dgl@layer3", "dgl", "layer3", None, ()),
    ("dgl:alpha=5", "dgl", None, None, (("alpha", 5),)),
    ("dgl@Mixed_6e:scales=(0.75,1,1.25):close=3", "dgl", "Mixed_6e", None,
     (("scales", (0.75, 1, 1.25)), ("close", 3))),
    ("i2c=runs/i2c.pt", "i2c", None, "runs/i2c.pt", ()),
    ("i2c@classifier=runs/i2c.pt:flag=True", "i2c", "classifier", "runs/i2c.pt", (("flag", True),)),
    ("captum:IntegratedGradients:n_steps=16", "captum:IntegratedGradients", None, None, (("n_steps", 16),)),
    ("captum:Saliency", "captum:Saliency", None, None, ()),
    ("scorecam:mode=fast", "scorecam", None, None, (("mode", "fast"),)),
    ("dgl-cem@layer4.1.conv2", "dgl-cem", "layer4.1.conv2", None, ()),
])
def test_parse(text, name, layer, checkpoint, options):
    spec = ExtractorSpec.parse(text)
    assert (spec.name, spec.layer, spec.checkpoint, spec.options) == (name, layer, checkpoint, options)
    assert ExtractorSpec.parse(str(spec)) == spec  # the canonical text parses back


def test_label_drops_the_checkpoint_and_generic_options_are_separated():
    spec = ExtractorSpec.parse("dgl@layer3=cls.pt:alpha=5:close=2")
    assert spec.label == "dgl@layer3:alpha=5:close=2"
    assert spec.method_options == {"alpha": 5} and spec.generic_options == {"close": 2}
    assert str(spec) == "dgl@layer3=cls.pt:alpha=5:close=2"
    named = ExtractorSpec.parse("i2c=ablation.pt:label=i2c-ablation")
    assert named.label == "i2c-ablation" and named.method_options == {}


@pytest.mark.parametrize("text,message", [
    ("", "NAME"), ("  ", "NAME"), ("grad cam", "bad extractor name"), ("dgl@", "empty layer"),
    ("i2c=", "empty checkpoint"), ("dgl:alpha", "KEY=VALUE"), ("dgl:alpha=1:alpha=2", "given twice"),
    ("3d", "bad extractor name"),
])
def test_bad_specs_name_the_problem(text, message):
    with pytest.raises(MethodError, match=message):
        ExtractorSpec.parse(text)


def test_split_keeps_parentheses_together_and_drops_repeats():
    assert split_specs("cam, dgl:scales=(1, 0.5),captum:Saliency,cam,,") == \
        ["cam", "dgl:scales=(1, 0.5)", "captum:Saliency"]
    assert split_specs("") == []
