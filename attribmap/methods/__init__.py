"""Map extractors and their registry.

Built-in post-hoc methods (all read one tapped layer; g = dz_c/dF):

======================= ==============================================================
``cam``                 sum_k W[c,k] F_k, W the classifier after global average pooling
``gradcam``             ReLU(sum_k alpha_k F_k), alpha_k = mean of g_k
``gradcampp``           Grad-CAM++ (closed form for exponential scores, eq. 19)
``hirescam``            ReLU(sum_k g_k F_k)
``gradcam-elementwise`` ReLU(sum_k ReLU(g_k F_k))
``xgradcam``            XGrad-CAM: w_k = sum g F / sum F
``layercam``            ReLU(sum_k ReLU(g_k) F_k)
``smoothgradcampp``     Grad-CAM++ on derivatives averaged over noisy inputs (seeded)
``finercam``            Grad-CAM of the target against its most similar classes
``shapleycam``          Grad-CAM weights from g - H F / 2 (second order)
``scorecam``            softmax weights of the target logit of masked inputs
``sscam``, ``iscam``    Score-CAM with noisy masks / integrated masks
``ablationcam``         relative logit drop when a channel is zeroed (network tail only)
``eigencam``            first principal component of F (``eigengradcam``: of g F)
``kpcacam``             first kernel principal component of F
``fem``                 channels weighted by their share of strong pixels
``fullgrad``            input-gradient x input plus every layer's bias gradients
``refinecam``           product of normalized maps of several layers
``dgl``                 DGL: sum_k G^c_k F~_k (both branches fused)
``dgl-psb``             DGL pixel-level selection branch: sum_k G^c_k F_k
``dgl-cem``             DGL class-aware enhanced map branch: sum_k F~_k
``i2c``                 class map A_c of an I2C model's fully convolutional head
``weightmap``           a trained weight-map generator's M = g(I) (built from its checkpoint)
``captum:X``            any captum.attr class X
======================= ==============================================================

Score-CAM, SS-CAM, IS-CAM, Ablation-CAM, FullGrad and Smooth Grad-CAM++ run the model again
(``cost="extra"`` at their registration); the others read only the shared pass.
"""
from __future__ import annotations

from attribmap.gradients import SCORE, LossGradient
from attribmap.methods import captum_methods as _captum  # noqa: F401  (registers the captum: resolver)
from attribmap.methods.ablation import ablationcam
from attribmap.methods.base import EXTRA_PASSES, Extractor, ExtractorResult, Method
from attribmap.methods.cam import cam
from attribmap.methods.dgl import DEFAULT_ALPHA, dgl, dgl_cem, dgl_psb
from attribmap.methods.eigencam import eigencam, eigengradcam, kpcacam
from attribmap.methods.fem import fem
from attribmap.methods.finercam import finer_needs, finercam
from attribmap.methods.fullgrad import fullgrad
from attribmap.methods.gradcam import gradcam, gradcam_elementwise, gradcampp, hirescam, layercam, xgradcam
from attribmap.methods.i2c import class_map_layer, i2c_class_map
from attribmap.methods.refinecam import refinecam, refinecam_layers
from attribmap.methods.scorecam import iscam, scorecam, sscam
from attribmap.methods.shapleycam import shapleycam
from attribmap.methods.smoothgradcampp import smoothgradcampp
from attribmap.methods.registry import (Registration, get_method, lookup, methods, register_extractor,
                                        register_method, register_resolver, registered_names,
                                        unregister_method)
from attribmap.methods.spec import ExtractorSpec, split_specs
from attribmap.methods.weightmap import CHECKPOINT_TASKS as _WEIGHTMAP_TASKS
from attribmap.methods.weightmap import weightmap_from_checkpoint

__all__ = ["Extractor", "ExtractorResult", "Method", "Registration", "ExtractorSpec", "split_specs",
           "get_method", "lookup", "methods", "register_method", "register_extractor", "register_resolver",
           "unregister_method", "registered_names", "POSTHOC_METHODS", "CAM_FAMILY"]


def _dgl_needs(options):
    """G^c and the loss gradient with the call's alpha."""
    return {SCORE, LossGradient(options.get("alpha", DEFAULT_ALPHA))}


register_method("cam", cam, "CAM: sum_k W[c,k] F_k with W the classifier after global average pooling")
register_method("gradcam", gradcam, "Grad-CAM: ReLU(sum_k mean(dz_c/dF_k) F_k)", needs={SCORE})
register_method("gradcampp", gradcampp, "Grad-CAM++: closed-form pixel weights of positive gradients",
                needs={SCORE})
register_method("hirescam", hirescam, "HiResCAM: ReLU(sum_k g_k * F_k)", needs={SCORE})
register_method("gradcam-elementwise", gradcam_elementwise, "element-wise Grad-CAM: ReLU(sum_k ReLU(g_k * F_k))",
                needs={SCORE})
register_method("xgradcam", xgradcam, "XGrad-CAM: w_k = sum(g F) / sum(F), ReLU(sum_k w_k F_k)", needs={SCORE})
register_method("layercam", layercam, "LayerCAM: ReLU(sum_k ReLU(g_k) * F_k)", needs={SCORE})
register_method("scorecam", scorecam,
                "Score-CAM: softmax over channels of the target logit of the input masked by each channel",
                cost=EXTRA_PASSES)
register_method("sscam", sscam, "SS-CAM: Score-CAM with Gaussian noise on the masks (seeded)", cost=EXTRA_PASSES)
register_method("iscam", iscam, "IS-CAM: Score-CAM integrated over scaled masks", cost=EXTRA_PASSES)
register_method("ablationcam", ablationcam,
                "Ablation-CAM: relative drop of the target logit when each channel is zeroed", cost=EXTRA_PASSES)
register_method("eigencam", eigencam, "Eigen-CAM: projection of F on its first principal component (class-agnostic)")
register_method("eigengradcam", eigengradcam, "Eigen-Grad-CAM: projection of g * F on its first principal component",
                needs={SCORE})
register_method("kpcacam", kpcacam, "KPCA-CAM: first kernel principal component of F (class-agnostic)")
register_method("fullgrad", fullgrad,
                "FullGrad: input-gradient x input plus the bias gradients of every conv / BN layer",
                cost=EXTRA_PASSES)
register_method("smoothgradcampp", smoothgradcampp,
                "Smooth Grad-CAM++: Grad-CAM++ on derivatives averaged over noisy copies of the input (seeded)",
                cost=EXTRA_PASSES)
register_method("finercam", finercam, "Finer-CAM: Grad-CAM of the target logit against its most similar classes",
                needs=finer_needs)
register_method("shapleycam", shapleycam, "ShapleyCAM: Grad-CAM weights from g - H F / 2 (a Hessian-vector product)")
register_method("fem", fem, "FEM: channels weighted by their share of pixels above mean + k std (class-agnostic)")
# shared: its extra layers are tapped in the shared forward pass whenever they can be named before it
register_method("refinecam", refinecam, "RefineCAM: product of normalized Grad-CAM++ maps of several layers",
                extra_layers=refinecam_layers)
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

#: Every CAM-family method of pytorch-grad-cam and torchcam that attribmap implements.
CAM_FAMILY = ("cam", "gradcam", "gradcampp", "hirescam", "gradcam-elementwise", "xgradcam", "layercam",
              "smoothgradcampp", "finercam", "shapleycam", "scorecam", "sscam", "iscam", "ablationcam", "eigencam",
              "eigengradcam", "kpcacam", "fem", "fullgrad", "refinecam")
