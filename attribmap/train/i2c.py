"""Task ``i2c``: CE + lambda1 L_SC + lambda2 L_GC on paired-class batches (Zhang et al. 2020).

As the authors ran it, I2C fine-tunes a converged cross-entropy model: first the CE stage
(an :class:`attribmap.train.I2CRecipe` with ``lambda_sc = lambda_gc = 0``, e.g. from the
pretraining classifier), then the fine-tuning stage from that checkpoint (``init``, lr
0.001, the default losses). The ablation fine-tunes the same CE model with the losses off.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Tuple, Union

import torch
from torch import nn

from attribmap.train.classifier import classification_loss, holdout_accuracy_fn, with_blanks
from attribmap.train.common import RunOptions, build_initialised, fit_recipe, open_data, summarize

if TYPE_CHECKING:  # pragma: no cover
    from attribmap.train.recipe import I2CRecipe

__all__ = ["train_i2c", "run_i2c", "I2CObjective", "i2c_step"]


class I2CObjective(nn.Module):
    """The I2C training objective: one module so DDP syncs the network and the centre bank.

    Parameters
    ----------
    net : nn.Module
        An I2C classifier with ``forward_features(x) -> (logits, feat, class_maps)``.
    criterion : attribmap.learned.I2CLoss
        Seed selection, L_SC / L_GC and the centre bank (buffers ``centers``, ``counts``).
    lambda_sc, lambda_gc : float
        Loss weights (0.008 and 0.001 in the paper).

    Notes
    -----
    ``forward(images (N+B,3,H,W), labels (N,))`` returns ``(total, ce, l_sc, l_gc, logits)``:
    the first N images are the paired real ones, the B others blank images (uniform
    target, no I2C loss). Under DDP the bank is a buffer of this module, so every step
    starts from rank 0's bank (``broadcast_buffers``): all ranks hold the same bank,
    updated from rank 0's pairs.
    """

    def __init__(self, net: nn.Module, criterion: nn.Module, lambda_sc: float = 0.008,
                 lambda_gc: float = 0.001) -> None:
        super().__init__()
        self.net = net
        self.criterion = criterion
        self.lambda_sc = float(lambda_sc)
        self.lambda_gc = float(lambda_gc)

    def forward(self, images: torch.Tensor, labels: torch.Tensor):
        """``(total, ce, l_sc, l_gc, logits)`` for ``images`` (N+B,3,H,W), the first N paired real ones with ``labels`` (N,), then B blank images."""
        logits, feat, class_maps = self.net.forward_features(images)
        n = labels.shape[0]
        ce, _ = classification_loss(logits, labels)
        l_sc, l_gc = self.criterion(feat[:n], class_maps[:n], labels)
        total = ce + self.lambda_sc * l_sc + self.lambda_gc * l_gc
        return total, ce, l_sc, l_gc, logits[:n]


def i2c_step(blank_fraction: float = 0.0, blank_kinds=("grey",)):
    """``step_fn`` for :func:`attribmap.train.fit` with an :class:`I2CObjective`; ``blank_fraction`` blank images of ``blank_kinds`` per batch."""
    def step(module: nn.Module, batch: Dict[str, Any]):
        labels = batch["label"]
        images = with_blanks(batch["image"], blank_fraction, blank_kinds)
        total, ce, l_sc, l_gc, logits = module(images, labels)
        acc = (logits.detach().argmax(1) == labels).float().mean()
        return total, {"ce": ce.detach(), "l_sc": l_sc.detach(), "l_gc": l_gc.detach(), "acc": acc}
    return step


def _feature_channels(net: nn.Module, image_size: int, device: torch.device) -> int:
    was_training = net.training
    net.eval()
    with torch.no_grad():
        _, feat, _ = net.forward_features(torch.zeros(1, 3, image_size, image_size, device=device))
    net.train(was_training)
    return int(feat.shape[1])


def run_i2c(recipe: "I2CRecipe", data: Union[str, "os.PathLike[str]"], out: Path,
            options: RunOptions) -> Tuple[Path, Dict[str, Any]]:
    """Train an :class:`attribmap.train.I2CRecipe` (see :func:`attribmap.train.train`).

    Batches come from :class:`attribmap.learned.PairedClassBatchSampler` (items 2i and 2i+1
    share a class; sharded across ranks under DDP); the losses and the centre bank are
    :class:`attribmap.learned.I2CLoss`, whose state is saved as ``extra["i2c_bank"]``.

    ``recipe`` is trained on ``data`` (dataset root) into ``out`` (best-checkpoint path) with
    the run ``options`` (:class:`RunOptions`); returns what :func:`attribmap.train.train` does.
    """
    from attribmap.data import collate_wsol
    from attribmap.distributed import distributed_session
    from attribmap.learned import I2CLoss, PairedClassBatchSampler
    from attribmap.train.data import make_loader
    from attribmap.train.seeding import seed_everything

    with distributed_session(options.device) as ctx:
        seed_everything(recipe.seed)
        parts = open_data(recipe, data, options)
        net, init = build_initialised(recipe, parts.num_classes, options, ctx, dropout=recipe.dropout)
        net.to(ctx.device)
        criterion = I2CLoss(parts.num_classes, _feature_channels(net, recipe.image_size, ctx.device),
                            k=recipe.k, threshold=recipe.threshold, alpha=recipe.alpha,
                            seed_sampling=recipe.seed_sampling)
        objective = I2CObjective(net, criterion, recipe.lambda_sc, recipe.lambda_gc)
        sampler = PairedClassBatchSampler(parts.train_labels, recipe.batch_size, seed=recipe.seed,
                                          drop_last=True, num_replicas=ctx.world_size, rank=ctx.rank)
        loader = make_loader(parts.train, recipe.batch_size, ctx, recipe.seed, num_workers=options.num_workers,
                             collate_fn=collate_wsol, batch_sampler=sampler)
        evaluate_fn = None
        if parts.holdout is not None:
            holdout = make_loader(parts.holdout, recipe.batch_size, ctx, recipe.seed, shuffle=False,
                                  shard=False, num_workers=options.num_workers, collate_fn=collate_wsol)
            evaluate_fn = holdout_accuracy_fn(net, holdout, ctx.device)
        result = fit_recipe(recipe, net, i2c_step(recipe.blank_fraction, recipe.blank_kinds), loader, out,
                            data, options, ctx, train_module=objective, evaluate_fn=evaluate_fn, init=init,
                            extra_modules={"i2c_bank": criterion}, head_groups=True)
    return out, summarize(result)


def train_i2c(data: Union[str, "os.PathLike[str]"], out: Union[str, "os.PathLike[str]"],
              **options: Any) -> Tuple[Path, Dict[str, Any]]:
    """Train an I2C classifier: :func:`attribmap.train.train` of an ``I2CRecipe(**fields)``.

    Parameters
    ----------
    data, out : path
        Dataset root and best-checkpoint path.
    **options
        Fields of :class:`attribmap.train.I2CRecipe` (``init``, ``lambda_sc``,
        ``lambda_gc``, ``k``, ``seed_sampling``, ``dropout``, ...) and the run options of
        :func:`attribmap.train.train`; unknown names raise
        :class:`attribmap.train.RecipeError`.

    Returns
    -------
    (pathlib.Path, dict)
        As :func:`attribmap.train.train`.

    Example
    -------
    ::

        ce, _ = train_i2c("suite", "runs/i2c_ce.pt", init="runs/pretrain.pt", lr=0.01,
                          lambda_sc=0.0, lambda_gc=0.0)
        i2c, _ = train_i2c("suite", "runs/i2c.pt", init=str(ce))   # lr 0.001, SC + GC
    """
    from attribmap.train.recipe import I2CRecipe
    from attribmap.train.runner import train_with

    return train_with(I2CRecipe, data, out, options)
