"""A trained weight-map generator used as a map extractor (``explain(..., method=...)``)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from attribmap.errors import InputError
from attribmap.methods.base import Extractor

__all__ = ["WeightMapExtractor"]


class WeightMapExtractor(Extractor):
    """Extractor whose raw map is the generator's output ``M = g(I)`` (class-agnostic).

    Parameters
    ----------
    generator : nn.Module
        Trained generator, (N,3,H,W) -> (N,1,H,W) in (0,1), e.g.
        :class:`attribmap.models.WeightMapGenerator`.
    name : str
        Name shown in results (default ``"weightmap"``).

    Notes
    -----
    ``model`` and ``target`` are ignored. The generator runs under ``torch.no_grad()`` in
    eval mode (BatchNorm running statistics, nothing updated) and its previous train/eval
    mode is restored afterwards. Images are moved to the generator's device; the map is
    returned on the images' device.
    """

    def __init__(self, generator: nn.Module, name: str = "weightmap") -> None:
        if not isinstance(generator, nn.Module):
            raise InputError(f"generator must be an nn.Module, got {type(generator).__name__}")
        self.generator = generator
        self.name = name
        self.description = "learned weight map M = g(I) of a trained generator (class-agnostic)"
        self.needs_target = False

    def __call__(self, images: Tensor, model: Optional[nn.Module] = None,
                 target: Optional[Tensor] = None, **options) -> Tensor:
        """Images (N,3,H,W) -> raw maps (N,H,W) in (0,1)."""
        if not isinstance(images, Tensor) or images.dim() != 4:
            raise InputError(f"images must be a (N,3,H,W) tensor, got "
                             f"{getattr(images, 'shape', type(images).__name__)}")
        param = next(self.generator.parameters(), None)
        device = param.device if param is not None else images.device
        was_training = self.generator.training
        self.generator.eval()
        try:
            with torch.no_grad():
                maps = self.generator(images.to(device))
        finally:
            self.generator.train(was_training)
        if maps.dim() == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        return maps.to(images.device)
