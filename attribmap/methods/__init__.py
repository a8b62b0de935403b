"""Map extractors and their registry.

Built-in post-hoc methods (all read one tapped layer):

========== ==============================================================
``cam``        sum_k W[c,k] F_k, W the classifier after global average pooling
``gradcam``    ReLU(sum_k alpha_k F_k), alpha_k = mean of dz_c/dF_k
``gradcampp``  Grad-CAM++ (closed form for exponential scores)
``dgl``        DGL: sum_k G^c_k F~_k (both branches fused)
``dgl-psb``    DGL pixel-level selection branch: sum_k G^c_k F_k
``dgl-cem``    DGL class-aware enhanced map branch: sum_k F~_k
``i2c``        class map A_c of an I2C model's fully convolutional head
``weightmap``  a trained weight-map generator's M = g(I) (built from its checkpoint)
``captum:X``   any captum.attr class X
========== ==============================================================
"""
from __future__ import annotations

from attribmap.gradients import SCORE, LossGradient
from attribmap.methods import captum_methods as _captum  # noqa: F401  (registers the captum: resolver)
from attribmap.methods.base import Extractor, ExtractorResult, Method
from attribmap.methods.cam import cam
from attribmap.methods.dgl import DEFAULT_ALPHA, dgl, dgl_cem, dgl_psb
from attribmap.methods.gradcam import gradcam, gradcampp
from attribmap.methods.i2c import class_map_layer, i2c_class_map
from attribmap.methods.registry import (Registration, get_method, lookup, methods, register_extractor,
                                        register_method, register_resolver, registered_names,
                                        unregister_method)
from attribmap.methods.spec import ExtractorSpec, split_specs
from attribmap.methods.weightmap import CHECKPOINT_TASKS as _WEIGHTMAP_TASKS
from attribmap.methods.weightmap import weightmap_from_checkpoint

__all__ = ["Extractor", "ExtractorResult", "Method", "Registration", "ExtractorSpec", "split_specs",
           "get_method", "lookup", "methods", "register_method", "register_extractor", "register_resolver",
           "unregister_method", "registered_names", "POSTHOC_METHODS"]


def _dgl_needs(options):
    """G^c and the loss gradient with the call's alpha."""
    return {SCORE, LossGradient(options.get("alpha", DEFAULT_ALPHA))}


register_method("cam", cam, "CAM: sum_k W[c,k] F_k with W the classifier after global average pooling")
register_method("gradcam", gradcam, "Grad-CAM: ReLU(sum_k mean(dz_c/dF_k) F_k)", needs={SCORE})
register_method("gradcampp", gradcampp, "Grad-CAM++: closed-form pixel weights of positive gradients",
                needs={SCORE})
register_method("dgl", dgl, "DGL: sum_k G^c_k (F/|F| - G^L/|G^L|)_k, both branches fused", needs=_dgl_needs)
register_method("dgl-psb", dgl_psb, "DGL pixel-level selection branch: sum_k G^c_k F_k", needs={SCORE})
register_method("dgl-cem", dgl_cem, "DGL class-aware enhanced map branch: sum_k (F/|F| - G^L/|G^L|)_k",
                needs=_dgl_needs)
register_method("i2c", i2c_class_map, "I2C: class map A_c of a fully convolutional (I2C-trained) head",
                layer_hint=class_map_layer)
register_extractor("weightmap", weightmap_from_checkpoint,
                   "weight map M = g(I) of a trained generator (class-agnostic; from its checkpoint)",
                   checkpoint_tasks=_WEIGHTMAP_TASKS)

#: The post-hoc methods that share one forward pass (the benchmark's default set).
POSTHOC_METHODS = ("cam", "gradcam", "gradcampp", "dgl", "dgl-psb", "dgl-cem")
