"""The model side of the faithfulness metrics: :class:`ModelInputs`.

Deletion, insertion, average drop and ROAD score perturbed copies of the input images with
the model. :class:`ModelInputs` holds the model, the images (in the model's normalized
input space, on the model's device) and the target classes, and runs every perturbed
forward in chunks of at most ``batch_size`` images (this bounds the memory) under
``torch.inference_mode()``, in eval mode (the model's mode is restored afterwards). What
several metrics share - the probabilities of the unperturbed images, the baselines and
their probabilities - is computed once and kept.

The score of an image is the softmax probability of its target class (the ground-truth
class in the benchmark: GT-known, like the maps), computed in float64 from the logits.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from torch import nn

from attribmap.errors import AttribmapError

__all__ = ["ModelInputs", "BASELINES", "default_batch_size", "gaussian_blur", "step_counts", "trapezoid_auc"]

#: What replaces removed pixels: zeros in the model's (normalized) input space, or a blurred copy.
BASELINES = ("zeros", "blur")

#: Perturbed images per forward pass when none is given, by device type. ResNet-18, 224 px,
#: deletion + insertion (benchmarks/speed_metrics.py, docs/performance.rst): on a 2-core CPU chunks
#: of 16 ran 1.0-1.2x the per-image loop's speed and chunks of 64 0.86x; on an H200 chunks of 16
#: ran 10.5x and chunks of 64 15.1x.
DEFAULT_BATCH_SIZES = {"cpu": 16, "cuda": 64}


def default_batch_size(device: "torch.device | str") -> int:
    """Perturbed images per forward pass on ``device`` when none is given: 64 on CUDA, 16 elsewhere."""
    return DEFAULT_BATCH_SIZES.get(torch.device(device).type, DEFAULT_BATCH_SIZES["cpu"])


def gaussian_blur(images: torch.Tensor, sigma: float = 5.0, kernel_size: int = 11) -> torch.Tensor:
    """Blur each channel with a sampled, normalized Gaussian (zero padding, same size).

    Parameters
    ----------
    images : Tensor (N, C, H, W)
    sigma : float
        Standard deviation in pixels (5, as in Petsiuk et al.'s insertion metric).
    kernel_size : int
        Odd side of the kernel (11).

    Returns
    -------
    Tensor (N, C, H, W), the dtype and device of ``images``
    """
    if not (sigma > 0) or kernel_size < 1 or kernel_size % 2 == 0:
        raise AttribmapError(f"blur needs sigma > 0 and an odd kernel_size; got sigma={sigma!r}, "
                             f"kernel_size={kernel_size!r}")
    offsets = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
    weights = torch.exp(-offsets ** 2 / (2.0 * float(sigma) ** 2))
    weights = (weights / weights.sum()).to(images.dtype).to(images.device)
    channels = images.shape[1]
    pad = kernel_size // 2
    horizontal = weights.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = weights.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    out = nn.functional.conv2d(images, horizontal, padding=(0, pad), groups=channels)
    return nn.functional.conv2d(out, vertical, padding=(pad, 0), groups=channels)


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and inference mode inside; the model's training flags restored on exit."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


class ModelInputs:
    """A model, a batch of its input images and their target classes.

    Parameters
    ----------
    model : nn.Module
        The classifier whose confidence is measured (logits (N, K), or an output that
        :func:`attribmap.tap.logits_of` reads).
    images : Tensor (N, C, H, W)
        The images as the model takes them (normalized); moved to the model's device.
    targets : array-like (N,) of int
        Target class of each image (the ground-truth class).
    batch_size : int, optional
        Most images per perturbed forward pass (bounds the memory; the numbers depend on it
        only through float rounding). By default :func:`default_batch_size` of the model's
        device: 16 on the CPU (on 2 cores, ResNet-18 at 224 px, chunks of 16 ran 1.0-1.2x the
        speed of single-image forwards and chunks of 64 0.86x), 64 on CUDA (on an H200,
        15.1x against 10.5x for chunks of 16); docs/performance.rst.
    progress : callable, optional
        Called with the number of images of every perturbed forward pass once it is done.
    channels_last : bool
        Hand each perturbed batch to the model in channels-last memory format (the model
        itself is not changed). About 1.3x faster on CPU for torchvision CNNs; the logits
        then differ from the default layout's in the last float32 bits, and a model that
        ``.view``-s its 4-D activations may refuse it.

    Examples
    --------
    >>> inputs = ModelInputs(model, images, labels, batch_size=16)       # doctest: +SKIP
    >>> scores, correct = inputs.clean()                                 # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, targets, batch_size: Optional[int] = None,
                 progress: Optional[Callable[[int], None]] = None, channels_last: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise AttribmapError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise AttribmapError(f"images must be a float tensor (N, C, H, W); got {shape}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise AttribmapError(f"batch_size must be a positive int or None; got {batch_size!r}")
        self.model = model
        self.device = _model_device(model)
        batch_size = default_batch_size(self.device) if batch_size is None else batch_size
        self.images = images.detach().to(self.device)
        targets = torch.as_tensor(np.asarray(targets.cpu() if isinstance(targets, torch.Tensor) else targets))
        if targets.shape != (images.shape[0],) or targets.is_floating_point():
            raise AttribmapError(f"targets must hold {images.shape[0]} class indices; got shape {tuple(targets.shape)}")
        self.targets = targets.long().to(self.device)
        self.batch_size = batch_size
        self.progress = progress
        self.channels_last = bool(channels_last)
        self._cache: Dict[object, object] = {}

    @property
    def count(self) -> int:
        """N."""
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        """H of the input images."""
        return int(self.images.shape[2])

    @property
    def width(self) -> int:
        """W of the input images."""
        return int(self.images.shape[3])

    def scores(self, build: Callable[[np.ndarray, np.ndarray], torch.Tensor], owners: np.ndarray,
               keys: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Target probability and top-1 flag of perturbed images, forwarded in chunks.

        Parameters
        ----------
        build : callable
            ``build(owners[part], keys[part])`` returns the perturbed images of one chunk,
            a tensor (c, C, H, W) on :attr:`device`.
        owners : ndarray int (J,)
            Index of the image each perturbed input comes from (its target class is used).
        keys : ndarray (J, ...), optional
            Passed to ``build`` alongside (e.g. the step of each input).

        Returns
        -------
        probabilities : ndarray float64 (J,)
        correct : ndarray bool (J,)
            Whether the top-1 class is the target.
        """
        owners = np.asarray(owners, dtype=np.int64).reshape(-1)
        keys = owners if keys is None else np.asarray(keys)
        probabilities = np.empty(len(owners), dtype=np.float64)
        correct = np.empty(len(owners), dtype=bool)
        with _evaluating(self.model):
            for start in range(0, len(owners), self.batch_size):
                part = slice(start, min(start + self.batch_size, len(owners)))
                batch = build(owners[part], keys[part])
                logits = self._logits(batch)
                if not torch.isfinite(logits).all():
                    raise AttribmapError("the model gave non-finite logits on a perturbed image")
                target = self.targets[torch.from_numpy(owners[part]).to(self.device)]
                chosen = torch.softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
                probabilities[part] = chosen.cpu().numpy()
                correct[part] = (logits.argmax(dim=1) == target).cpu().numpy()
                if self.progress is not None:
                    self.progress(int(batch.shape[0]))
        return probabilities, correct

    def clean(self) -> Tuple[np.ndarray, np.ndarray]:
        """Target probabilities (N,) float64 and top-1 flags (N,) of the unperturbed images."""
        return self._kept(("clean",), lambda: self.scores(lambda owners, _: self.images[owners],
                                                          np.arange(self.count)))

    def baseline(self, kind: str, sigma: float = 5.0, kernel_size: int = 11) -> torch.Tensor:
        """The baseline images (N, C, H, W) of ``kind`` ``"zeros"``, or ``"blur"`` (Gaussian, ``sigma``, ``kernel_size``)."""
        if kind not in BASELINES:
            raise AttribmapError(f"baseline must be one of {BASELINES}; got {kind!r}")
        if kind == "zeros":
            return self._kept(("baseline", kind), lambda: torch.zeros_like(self.images))
        return self._kept(("baseline", kind, float(sigma), int(kernel_size)),
                          lambda: gaussian_blur(self.images, sigma, kernel_size))

    def baseline_scores(self, kind: str, sigma: float = 5.0, kernel_size: int = 11) -> Tuple[np.ndarray, np.ndarray]:
        """:meth:`scores` of the baseline images themselves (``kind``, ``sigma`` and ``kernel_size`` as in :meth:`baseline`).

        The zero baseline is the same image for every target: it is forwarded once.
        """
        base = self.baseline(kind, sigma, kernel_size)
        if kind == "zeros":  # one forward of the zero image, read at every image's target
            return self._kept(("baseline_scores", kind), lambda: self._zero_scores(base))
        return self._kept(("baseline_scores", kind, float(sigma), int(kernel_size)),
                          lambda: self.scores(lambda owners, _: base[owners], np.arange(self.count)))

    def _zero_scores(self, base: torch.Tensor) -> Tuple[np.ndarray, np.ndarray]:
        with _evaluating(self.model):
            logits = self._logits(base[:1])[0]
        if self.progress is not None:
            self.progress(1)
        if not torch.isfinite(logits).all():
            raise AttribmapError("the model gave non-finite logits on the zero baseline")
        probabilities = torch.softmax(logits, dim=0)[self.targets]
        correct = logits.argmax() == self.targets
        return probabilities.cpu().numpy().astype(np.float64), correct.cpu().numpy()

    def _logits(self, batch: torch.Tensor) -> torch.Tensor:
        from attribmap.tap import logits_of  # noqa: PLC0415

        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return logits_of(self.model(batch)).double()

    def _kept(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


def step_counts(pixels: int, steps: int) -> np.ndarray:
    """Pixels perturbed after each of ``steps`` equal steps over ``pixels``: ``floor(s * pixels / steps)``, s = 0..steps."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise AttribmapError(f"steps must be a positive int; got {steps!r}")
    return (np.arange(steps + 1, dtype=np.int64) * int(pixels)) // int(steps)


def trapezoid_auc(x: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Area under each curve by the trapezoid rule: (J,) for ``curves`` (J, S + 1) over ``x`` (S + 1,)."""
    widths = np.diff(np.asarray(x, dtype=np.float64))
    heights = (curves[:, 1:] + curves[:, :-1]) / 2.0
    return heights @ widths

