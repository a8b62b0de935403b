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

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from attribmap.errors import ImageReadError, InputError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "DEFAULT_SIZE", "default_transform", "to_batch", "load_image",
           "to_rgb"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224

ImageLike = Union[torch.Tensor, np.ndarray, "PIL.Image.Image", str, os.PathLike]


def load_image(path: Union[str, os.PathLike]) -> "PIL.Image.Image":
    """Open and decode an image file as an RGB PIL image.

    High-bit-depth greyscale files (16-bit PNG / TIFF, PIL modes ``I;16*`` and ``I``) are
    scaled by their bit depth (65535 -> 255), floating-point ones (mode ``F``) from [0, 1];
    PIL's own conversion would saturate them to white.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    PIL.Image.Image
        Mode ``RGB``, fully decoded (the file is closed).

    Raises
    ------
    FileNotFoundError
        ``path`` is not a file.
    ImageReadError
        The file is empty, not an image PIL can identify, or truncated / corrupt; the
        message names the file and the reason.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {str(path)!r}")
    if path.stat().st_size == 0:
        raise ImageReadError(f"cannot read image {str(path)!r}: the file is empty (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb(img)
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"cannot read image {str(path)!r}: not an image file PIL can identify "
                             f"(wrong extension or not an image?)") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated / corrupt data, decoder errors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageReadError(f"cannot read image {str(path)!r}: truncated or corrupt image data ({reason})") from exc


def to_rgb(image: "PIL.Image.Image") -> "PIL.Image.Image":
    """Convert a PIL ``image`` of any mode to 8-bit RGB, scaling by bit depth.

    ``I;16``, ``I;16B``, ``I;16L`` and ``I`` (16-bit greyscale as PIL reads PNG / TIFF) are
    divided by 65535 / 255 (values above 65535 saturate), ``F`` is taken as [0, 1]; every
    other mode goes through PIL's ``convert("RGB")``.
    """
    from PIL import Image

    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 1.0 if image.mode == "F" else 65535.0
        grey = np.clip(np.round(values / scale * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")


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
