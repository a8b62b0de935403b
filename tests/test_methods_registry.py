"""The registry: registering, looking up and listing extractors."""
from __future__ import annotations

import pytest
import torch

import attribmap


def test_register_custom_method_and_unknown_names(tiny_model, tiny_images):
    def mean_activation(capture, layer):
        """Mean of the tapped activations over channels."""
        return capture.activations(layer).mean(1)

    attribmap.register_method("test-mean", mean_activation)
    try:
        assert "test-mean" in attribmap.methods()
        out = attribmap.explain(tiny_model, tiny_images, "test-mean", "features", raw=True)
        assert torch.allclose(out, tiny_model.features(tiny_images).mean(1))
        with pytest.raises(attribmap.MethodError, match="already registered"):
            attribmap.register_method("test-mean", mean_activation)
    finally:
        attribmap.unregister_method("test-mean")
    with pytest.raises(attribmap.MethodError, match="did you mean 'gradcam'"):
        attribmap.explain(tiny_model, tiny_images, "gradcma", "features")
    with pytest.raises(attribmap.MethodError, match="no attribution class 'Nope'"):
        attribmap.explain(tiny_model, tiny_images, "captum:Nope", "features")


def test_resolvers_checkpoint_extractors_and_listing(tmp_path):
    from attribmap.methods import lookup, register_extractor, register_resolver
    from attribmap.methods.base import Extractor

    class Constant(Extractor):
        description = "a constant map"
        needs_target = False  # class-agnostic: explain spends no forward pass on targets

        def __init__(self, value):
            self.name, self.value = f"const:{value}", float(value)

        def __call__(self, images, model, target, **options):
            return torch.full((images.shape[0], 2, 2), self.value)

    register_resolver("const", Constant, {"1": "the map 1"})
    register_extractor("test-file", lambda path, device, **o: Constant(7), "built from a file",
                       checkpoint_tasks=("test",))
    try:
        assert attribmap.methods()["const:1"] == "the map 1"
        assert lookup("const:3").extractor.value == 3.0
        assert torch.equal(attribmap.explain(torch.nn.Linear(1, 1).eval(), torch.zeros(1, 3, 4, 4), "const:2", raw=True),
                           torch.full((1, 2, 2), 2.0))
        assert lookup("test-file").checkpoint_tasks == ("test",) and lookup("test-file").extractor is None
        with pytest.raises(attribmap.MethodError, match="built from its checkpoint file"):
            attribmap.get_method("test-file")
    finally:
        attribmap.unregister_method("test-file")
        from attribmap.methods import registry as method_registry
        method_registry._RESOLVERS.pop("const", None)  # no public unregister for resolvers: leave no trace
    with pytest.raises(attribmap.MethodError, match="invalid method name"):
        attribmap.register_method("a:b", lambda capture, layer: None)


def test_registry_and_captum_adapter_do_not_import_each_other():
    import ast
    import inspect

    from attribmap.methods import captum_methods, registry

    def imported(module):
        tree = ast.parse(inspect.getsource(module))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names.add(node.module or "")
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        return names

    assert not any("captum" in name for name in imported(registry))
    assert "attribmap.methods.registry" in imported(captum_methods)  # one way: it registers its resolver
    assert "weightmap" in attribmap.methods() and "captum:Saliency" in attribmap.methods()
