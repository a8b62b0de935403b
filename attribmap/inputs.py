"""Turn user images into a batch tensor.

Tensors are used exactly as given; PIL images, ndarrays and file paths go through the
documented default transform :func:`default_transform`:

1. convert to RGB,
2. resize (squash, no crop) to 224 x 224 with bilinear interpolation - the frame of the
   official WSOL protocol,
3. scale to [0, 1] (``ToTensor``),
4. normalize with the ImageNet mean and standard deviation used by torchvision's weights.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from attribmap.errors import ImageReadError, InputError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "DEFAULT_SIZE", "NONFINITE_POLICIES", "default_transform", "to_batch",
           "load_image", "image_size", "to_rgb", "to_grey", "check_finite", "fit_to_model", "model_input_size",
           "declared_input_size"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224
#: What ``nonfinite=`` of :meth:`attribmap.Explainer.explain_many` accepts.
NONFINITE_POLICIES = ("raise", "zero")

ImageLike = Union[torch.Tensor, np.ndarray, "PIL.Image.Image", str, os.PathLike]


def load_image(path: Union[str, os.PathLike], mode: str = "RGB") -> "PIL.Image.Image":
    """Open and decode an image file as an RGB (or greyscale) PIL image.

    High-bit-depth greyscale files (16-bit PNG / TIFF, PIL modes ``I;16*`` and ``I``) are
    scaled by their bit depth (65535 -> 255), floating-point ones (mode ``F``) from [0, 1];
    PIL's own conversion would saturate them to white.

    Parameters
    ----------
    path : str or path-like
    mode : {"RGB", "L"}
        ``"RGB"`` (:func:`to_rgb`) or 8-bit greyscale ``"L"`` (:func:`to_grey`; masks).

    Returns
    -------
    PIL.Image.Image
        Mode ``mode``, fully decoded (the file is closed).

    Raises
    ------
    FileNotFoundError
        ``path`` is not a file.
    ImageReadError
        The file is empty, not an image PIL can identify, truncated / corrupt, or a
        floating-point image holding NaN / infinite pixels; the message names the file and
        the reason.
    """
    if mode not in ("RGB", "L"):
        raise InputError(f"mode must be 'RGB' or 'L'; got {mode!r}")
    convert = to_rgb if mode == "RGB" else to_grey
    with _opened(path) as img:
        try:
            img.load()
            return convert(img)
        except InputError as exc:  # a float image holding NaN / inf
            raise ImageReadError(f"cannot read image {str(path)!r}: {exc}") from exc
        except (OSError, ValueError, SyntaxError) as exc:  # truncated / corrupt data, decoder errors
            raise ImageReadError(f"cannot read image {str(path)!r}: truncated or corrupt image data "
                                 f"({_reason(exc)})") from exc


def image_size(path: Union[str, os.PathLike]) -> Tuple[int, int]:
    """``(W, H)`` of the image file at ``path`` from its header (the pixel data is not decoded).

    Raises
    ------
    FileNotFoundError, ImageReadError
        As :func:`load_image` (a truncated file whose header is intact passes).
    """
    with _opened(path) as img:
        return int(img.size[0]), int(img.size[1])


@contextlib.contextmanager
def _opened(path: Union[str, os.PathLike]):
    """``PIL.Image.open`` with attribmap's errors: missing file, empty file, not an image."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {str(path)!r}")
    if path.stat().st_size == 0:
        raise ImageReadError(f"cannot read image {str(path)!r}: the file is empty (0 bytes)")
    try:
        img = Image.open(path)
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"cannot read image {str(path)!r}: not an image file PIL can identify "
                             f"(wrong extension or not an image?)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"cannot read image {str(path)!r}: corrupt image header ({_reason(exc)})") from exc
    with img:
        yield img


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def to_rgb(image: "PIL.Image.Image") -> "PIL.Image.Image":
    """Convert a PIL ``image`` of any mode to 8-bit RGB, scaling by bit depth.

    ``I;16``, ``I;16B``, ``I;16L`` and ``I`` (16-bit greyscale as PIL reads PNG / TIFF) are
    divided by 65535 / 255 (values above 65535 saturate), ``F`` is taken as [0, 1]; every
    other mode goes through PIL's ``convert("RGB")``.

    Raises
    ------
    InputError
        A floating-point (``F``) image holds NaN or infinite values.
    """
    if _high_bit_depth(image):
        return to_grey(image).convert("RGB")
    return image.convert("RGB")


def to_grey(image: "PIL.Image.Image") -> "PIL.Image.Image":
    """Convert ``image``, a PIL image of any mode, to 8-bit greyscale (mode ``L``), scaling by
    bit depth exactly like :func:`to_rgb` (the reading of masks)."""
    from PIL import Image

    if not _high_bit_depth(image):
        return image.convert("L")
    values = np.asarray(image, dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"the floating-point image (mode {image.mode}) holds {int((~np.isfinite(values)).sum())} "
                         "NaN or infinite pixels; expected finite values in [0, 1]")
    scale = 1.0 if image.mode == "F" else 65535.0
    grey = np.clip(np.round(values / scale * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L")


def _high_bit_depth(image: "PIL.Image.Image") -> bool:
    return image.mode.startswith("I") or image.mode == "F"


def declared_input_size(model: Any) -> Optional[int]:
    """A model's ``input_size`` attribute when it is an int of at least 32, else None.

    Parameters
    ----------
    model : nn.Module or any object
        attribmap's ImageNet classifiers declare the resolution of their weights (224, 240, 260).

    Returns
    -------
    int or None
    """
    declared = getattr(model, "input_size", None)
    if isinstance(declared, int) and not isinstance(declared, bool) and declared >= 32:
        return declared
    return None


def model_input_size(model: Any) -> int:
    """The side length a model's images are resized to: :func:`declared_input_size`, else 224.

    Parameters
    ----------
    model : nn.Module or any object
        The model the images are for.

    Returns
    -------
    int
        The declared ``input_size``, else :data:`DEFAULT_SIZE`.
    """
    declared = declared_input_size(model)
    return DEFAULT_SIZE if declared is None else declared


def default_transform(image: Any, size: int = DEFAULT_SIZE) -> torch.Tensor:
    """Apply the default transform to one PIL image, ndarray or path.

    Parameters
    ----------
    image : PIL.Image.Image, numpy.ndarray or path
        An ndarray is (H, W), (H, W, 3) or (H, W, 4); uint8 in [0, 255] or float in [0, 1].
    size : int
        Output side length (the image is squashed to ``size x size``).

    Returns
    -------
    torch.Tensor
        (3, size, size) float32, ImageNet-normalized.
    """
    from PIL import Image
    from torchvision.transforms import functional as TF

    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    elif isinstance(image, np.ndarray):
        image = _ndarray_to_pil(image)
    if not isinstance(image, Image.Image):
        raise InputError(f"cannot convert {type(image).__name__} to an image; expected a tensor, "
                         "PIL image, ndarray or file path")
    image = to_rgb(image).resize((size, size), Image.BILINEAR)
    tensor = TF.to_tensor(image)
    return TF.normalize(tensor, IMAGENET_MEAN, IMAGENET_STD)


def _ndarray_to_pil(array: np.ndarray) -> "PIL.Image.Image":
    from PIL import Image

    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"ndarray image must be (H,W), (H,W,3) or (H,W,4); got shape {array.shape}")
    if array.dtype == np.uint8:
        data = array
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
            raise InputError("float ndarray images must hold finite values in [0, 1]; "
                             f"got range [{np.nanmin(array):.3g}, {np.nanmax(array):.3g}]")
        data = np.round(array * 255).astype(np.uint8)
    else:
        raise InputError(f"ndarray image dtype must be uint8 or float; got {array.dtype}")
    return Image.fromarray(data)


def to_batch(images: Union[ImageLike, Sequence[ImageLike]], device: Optional[torch.device] = None,
             size: int = DEFAULT_SIZE) -> torch.Tensor:
    """Convert images to a float batch (N, C, H, W).

    Parameters
    ----------
    images : tensor, PIL image, ndarray, path, or a list of them
        A tensor (C,H,W) or (N,C,H,W) is used as given (only a batch axis is added). Other
        inputs are converted with :func:`default_transform` and stacked.
    device : torch.device, optional
        Move the batch there (tensors given on another device are moved too).
    size : int
        Side length for :func:`default_transform`.

    Returns
    -------
    torch.Tensor
        (N, C, H, W) floating-point batch.
    """
    if isinstance(images, torch.Tensor):
        batch = images
        if batch.dim() == 3:
            batch = batch.unsqueeze(0)
        if batch.dim() != 4:
            raise InputError(f"image tensor must be (C,H,W) or (N,C,H,W); got shape {tuple(images.shape)}")
        if not batch.is_floating_point():
            raise InputError(f"image tensor must be floating point (normalized); got dtype {batch.dtype}")
        if batch.shape[0] == 0:
            raise InputError("image batch is empty (N = 0)")
    elif isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise InputError("empty list of images")
        parts = []
        for item in images:
            if isinstance(item, torch.Tensor):
                parts.append(item if item.dim() == 3 else _single(item))
            else:
                parts.append(default_transform(item, size))
        shapes = {tuple(p.shape) for p in parts}
        if len(shapes) != 1:
            raise InputError(f"images in a list must share one shape; got {sorted(shapes)}")
        batch = torch.stack(parts)
    else:
        batch = default_transform(images, size).unsqueeze(0)
    if device is not None:
        batch = batch.to(device)
    return batch


def _single(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.dim() == 4 and tensor.shape[0] == 1:
        return tensor[0]
    raise InputError(f"list items must be single images (C,H,W); got shape {tuple(tensor.shape)}")


def check_finite(batch: torch.Tensor, nonfinite: str = "raise") -> torch.Tensor:
    """Refuse (or zero) NaN and infinite values of an image batch.

    Parameters
    ----------
    batch : torch.Tensor
        (N, C, H, W) images.
    nonfinite : {"raise", "zero"}
        ``"raise"`` (default): an :class:`~attribmap.errors.InputError` naming the images
        that hold NaN / inf values. ``"zero"``: a ``RuntimeWarning`` naming them, and those
        values replaced by 0 (the ImageNet mean after normalization) in a copy.

    Returns
    -------
    torch.Tensor
        ``batch`` itself when every value is finite, else (``"zero"``) the cleaned copy.
    """
    if nonfinite not in NONFINITE_POLICIES:
        raise InputError(f"nonfinite must be one of {NONFINITE_POLICIES}; got {nonfinite!r}")
    finite = torch.isfinite(batch)
    if bool(finite.all()):
        return batch
    bad = (~finite).flatten(1).any(dim=1).nonzero().flatten().tolist()
    shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    what = f"image{'s' if len(bad) > 1 else ''} {shown} of the batch (N = {batch.shape[0]})"
    if nonfinite == "raise":
        raise InputError(f"{what} hold{'' if len(bad) > 1 else 's'} NaN or infinite values; expected finite "
                         "normalized images (pass nonfinite='zero' to replace such values by 0 with a warning)")
    import warnings

    warnings.warn(f"{what}: {int((~finite).sum())} NaN or infinite values replaced by 0 (nonfinite='zero')",
                  RuntimeWarning, stacklevel=3)
    return torch.where(finite, batch, torch.zeros((), dtype=batch.dtype, device=batch.device))


def fit_to_model(batch: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """Check an image batch against what the model's stem takes; cast its dtype.

    * Floating dtype: a batch of another floating dtype than the model's parameters
      (float64 images for a float32 model, the numpy default) is **cast** to the model's
      dtype; the maps come back in that dtype.
    * Channels: when the model's first layer with parameters is a convolution, a batch
      with another channel count (a 1-channel greyscale tensor for an RGB model) is refused
      with an :class:`~attribmap.errors.InputError` saying what was given and expected.

    Parameters
    ----------
    batch : torch.Tensor
        (N, C, H, W) floating-point images.
    model : nn.Module

    Returns
    -------
    torch.Tensor
        ``batch``, cast when needed.
    """
    stem = _stem(model)
    if stem is not None:
        name, module = stem
        expected = int(module.in_channels)
        if batch.shape[1] != expected:
            hint = (": repeat a greyscale image to three channels (x.expand(-1, 3, -1, -1)) or give a PIL "
                    "image / file, which is converted to RGB" if batch.shape[1] == 1 and expected == 3 else "")
            raise InputError(f"the images have {batch.shape[1]} channel{'s' if batch.shape[1] != 1 else ''} "
                             f"(shape {tuple(batch.shape)}) but the model's first layer {name!r} takes "
                             f"{expected}{hint}")
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if dtype is not None and batch.dtype != dtype:
        batch = batch.to(dtype)
    return batch


def _stem(model: torch.nn.Module):
    """(name, module) of the first leaf module with parameters when it is a convolution, else None."""
    for name, module in model.named_modules():
        if next(module.children(), None) is not None or next(module.parameters(recurse=False), None) is None:
            continue
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            return name, module
        return None
    return None
