"""Ablation-CAM (Desai & Ramaswamy, WACV 2020): channel weights from the score drop when a channel is zeroed.

w_k = (z_c - z_c^(k)) / z_c, with z^(k) the logits when channel k of the tapped activations
is set to zero; map = ReLU(sum_k w_k F_k). Zeroing a channel that is already all zeros
changes nothing (w_k = 0 exactly), so only the other channels are scored.

The ablated activations go through the part of the network after the tapped layer only
(:func:`~attribmap.methods.network_tail.network_tail`, a torch.fx split, checked against the
recorded logits); where a model cannot be split, through full forward passes whose tapped
layer's output is replaced by a hook (``forward="full"`` forces this path).

A module that runs several times per forward pass (one activation module applied twice) is
ablated at the call the tap reads, its last (:meth:`attribmap.tap.Capture.calls`): the tail
starts after that call, and a full forward pass replaces that call's output only.
"""
from __future__ import annotations

import torch

from attribmap.errors import MethodError
from attribmap.hooks import forward_hooks
from attribmap.methods.gradcam import weighted_channels
from attribmap.methods.network_tail import network_tail
from attribmap.methods.perturbation import (DistinctRows, check_batch_size, check_choice, in_fast_layout,
                                            run_chunks, score_classes)
from attribmap.methods.scorecam import check_eval_mode
from attribmap.tap import Capture, logits_of

__all__ = ["ablationcam", "ablated_logits"]

FORWARDS = ("auto", "tail", "full")


def _zero_channels(feats: torch.Tensor, image_of: torch.Tensor, channel_of: torch.Tensor) -> torch.Tensor:
    """Copies of ``feats[image_of]`` with channel ``channel_of[j]`` of copy j set to zero."""
    batch = feats.index_select(0, image_of).clone()
    batch[torch.arange(batch.shape[0], device=batch.device), channel_of] = 0
    return batch


def ablated_logits(capture: Capture, layer: str, feats: torch.Tensor, images: torch.Tensor, logits: torch.Tensor,
                   image_of: torch.Tensor, channel_of: torch.Tensor, classes: torch.Tensor, batch_size: int = 64,
                   forward: str = "auto") -> torch.Tensor:
    """Logits of ``classes`` (J, len(classes)) with channel ``channel_of[j]`` of image ``image_of[j]`` zeroed.

    Parameters
    ----------
    capture : Capture
        Gives the model and the layer's module.
    layer : str
        Name of the tapped layer whose activations are ablated (and after which the
        network is split).
    feats, images, logits : torch.Tensor
        Activations (U, C, h, w), inputs (U, C_in, H, W) and logits (U, K) of the images
        that ``image_of`` indexes.
    image_of, channel_of : torch.Tensor
        (J,) image and channel to ablate, one job each.
    classes : torch.Tensor
        (M,) long classes whose logits are kept.
    batch_size : int
        Ablated copies per forward pass.
    forward : {"auto", "tail", "full"}
        "tail" runs only the network after the layer (an error if it cannot be split);
        "full" runs whole forward passes with the layer's output replaced; "auto" prefers
        the tail.

    Returns
    -------
    torch.Tensor
        (J, len(classes)) logits, in job order.

    Raises
    ------
    MethodError
        ``forward="tail"`` and the network after ``layer`` cannot be split off.
    """
    tail = None
    if forward in ("auto", "tail"):
        tail = network_tail(capture.model, layer)
        side = tail.side_inputs(images) if tail is not None else ()
        if tail is not None and not tail.matches(feats, side, logits):
            tail = None
        if tail is None and forward == "tail":
            raise MethodError(f"the network after layer {layer!r} of {type(capture.model).__name__} cannot be "
                              "split off with torch.fx (or its tail does not reproduce the logits); use "
                              "forward='full'")
    if tail is not None:
        def build_tail(part: slice) -> torch.Tensor:
            return in_fast_layout(tail, lambda acts, *rest: tail(acts, rest),
                                  _zero_channels(feats, image_of[part], channel_of[part]),
                                  *(s.index_select(0, image_of[part]) for s in side))

        return run_chunks(build_tail, int(image_of.numel()), batch_size, classes)
    module = dict(capture.model.named_modules())[layer]
    read_call = capture.calls(layer)  # the call the tap recorded (the last one)
    replacement = {}

    def replace(mod, inputs, output):
        replacement["calls"] += 1
        if replacement["calls"] != read_call:
            return None  # another call of a module the forward pass runs several times
        # the ablated activations in the layout the layer's own output has (that of the input)
        return torch.empty_like(output).copy_(replacement["value"])

    def run_model(x: torch.Tensor) -> torch.Tensor:
        replacement["calls"] = 0  # per forward pass (in_fast_layout may run a second one)
        return logits_of(capture.model(x))

    def build_full(part: slice) -> torch.Tensor:
        replacement["value"] = _zero_channels(feats, image_of[part], channel_of[part])
        with torch.inference_mode():
            return in_fast_layout(capture.model, run_model, images.index_select(0, image_of[part]))

    with forward_hooks({module: replace}):
        return run_chunks(build_full, int(image_of.numel()), batch_size, classes)


def ablationcam(capture: Capture, layer: str, batch_size: int = 64, forward: str = "auto") -> torch.Tensor:
    """Ablation-CAM: w_k = (z_c - z_c^(k)) / z_c, map ReLU(sum_k w_k F_k); (N, h, w).

    Parameters
    ----------
    capture : Capture
        The recorded forward pass: activations of ``layer`` (N, C, h, w), logits and
        targets, one row per image and target class, and the cached gradients.
    layer : str
        Name of the tapped layer whose activations F are read.
    batch_size : int
        Ablated copies of the activations per forward pass (bounds the memory).
    forward : {"auto", "tail", "full"}
        How the ablated activations reach the logits (see :func:`ablated_logits`).

    Returns
    -------
    torch.Tensor
        (N, h, w) raw maps on the layer's grid, one per row of ``capture``.

    References
    ----------
    Desai, Ramaswamy, "Ablation-CAM: Visual Explanations for Deep Convolutional Network via
    Gradient-free Localization", WACV 2020.
    """
    check_batch_size(batch_size)
    check_choice(forward, "forward", FORWARDS)
    check_eval_mode(capture, "ablationcam")
    feats = capture.activations(layer)
    rows = DistinctRows(capture.images)
    distinct = feats.index_select(0, rows.index)
    u, c = distinct.shape[:2]
    classes, position = score_classes(capture.targets)
    live = (distinct.flatten(2) != 0).any(dim=2)  # (U, C): channels that zeroing changes
    pairs = live.flatten().nonzero()[:, 0]
    all_logits = capture.logits.detach().index_select(0, rows.index)
    logits = ablated_logits(capture, layer, distinct, capture.images.index_select(0, rows.index), all_logits,
                            pairs // c, pairs % c, classes, batch_size, forward)
    base = all_logits.index_select(1, classes.to(all_logits.device))
    ablated = base[:, None, :].expand(u, c, -1).clone()  # untouched channels keep the original score
    ablated.view(u * c, -1)[pairs] = logits.to(ablated.dtype)
    original = base[rows.inverse, position]  # (N,)
    scores = ablated[rows.inverse, :, position]  # (N, C)
    weights = (original[:, None] - scores) / original[:, None]
    return torch.relu(weighted_channels(weights, feats))

