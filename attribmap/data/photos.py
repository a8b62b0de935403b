"""Natural photos that ship inside installed packages, with their ImageNet classes and boxes.

No image file is part of attribmap: each photo is read from the package that distributes
it (scikit-image's ``skimage.data``, scikit-learn's sample images, matplotlib's sample
data), so they are available offline wherever those packages are.

================  ===============================================  ==================================
name              source                                           ImageNet classes (box around)
================  ===============================================  ==================================
``coffee``        ``skimage.data.coffee()``                        espresso 967, cup 968, coffee mug
                                                                   504 (cup and saucer)
``camera``        ``skimage.data.camera()`` (greyscale -> RGB)     tripod 872 (the tripod)
``rocket``        ``skimage.data.rocket()``                        missile 657, projectile 744,
                                                                   space shuttle 812 (the rocket)
``chelsea``       ``skimage.data.chelsea()``                       Egyptian cat 285, tabby 281,
                                                                   tiger cat 282 (the cat)
``motorcycle``    ``skimage.data.stereo_motorcycle()[0]`` (left)   moped 665, motor scooter 670
                                                                   (the motorcycle)
``astronaut``     ``skimage.data.astronaut()``                     space shuttle 812 (a model in the
                                                                   background; no box: no object
                                                                   dominates)
``china``         ``sklearn.datasets.load_sample_image``           bell cote 442, dome 538, palace
                  ``("china.jpg")``                                698, stupa 832 (the pagoda)
``flower``        ``sklearn.datasets.load_sample_image``           daisy 985 (the dahlia in front;
                  ``("flower.jpg")``                               ImageNet has no dahlia)
``grace_hopper``  ``matplotlib.cbook.get_sample_data``             military uniform 652 (the person)
                  ``("grace_hopper.jpg")``
================  ===============================================  ==================================

The boxes were drawn by hand on each photo at its own resolution. They are inclusive pixel
corners ``(x0, y0, x1, y1)`` like the boxes of :mod:`attribmap.data`'s WSOL datasets.
``china`` and ``flower`` need scikit-learn (``attribmap[pretrained]``).

Examples
--------
>>> from attribmap.data import photos
>>> photos.names()[:3]
('coffee', 'camera', 'rocket')
>>> photos.info("coffee").classes
(967, 968, 504)
>>> photos.load("camera").mode, photos.load("camera").size
('RGB', (512, 512))
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from attribmap.errors import InputError

__all__ = ["PhotoInfo", "names", "info", "load", "box_mask", "is_photo"]

Box = Tuple[int, int, int, int]


@dataclass(frozen=True)
class PhotoInfo:
    """What one bundled photo shows.

    Attributes
    ----------
    name : str
        The photo's name (:func:`names`).
    source : str
        The package call that returns it.
    size : (int, int)
        (W, H) in pixels.
    classes : tuple of int
        ImageNet-1k class indices of the object it shows, the most fitting first.
    box : (int, int, int, int) or None
        Hand-drawn inclusive box ``(x0, y0, x1, y1)`` around that object in the photo's own
        pixels; None where no single object dominates.
    description : str
        What is in the photo, in words.
    """

    name: str
    source: str
    size: Tuple[int, int]
    classes: Tuple[int, ...]
    box: Optional[Box]
    description: str


def _skimage(function: str, index: Optional[int] = None) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        from skimage import data

        image = getattr(data, function)()
        return image[index] if index is not None else image
    return read


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        try:
            from sklearn.datasets import load_sample_image
        except ImportError:
            raise InputError(f"the photo {filename!r} ships with scikit-learn, which is not installed: pip install "
                             "scikit-learn (or 'attribmap[pretrained]')") from None
        return load_sample_image(filename)
    return read


def _matplotlib(filename: str) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        from matplotlib import cbook
        from PIL import Image

        with cbook.get_sample_data(filename) as handle:
            return np.asarray(Image.open(handle).convert("RGB"))
    return read


_PHOTOS: Dict[str, Tuple[PhotoInfo, Callable[[], np.ndarray]]] = {p.name: (p, reader) for p, reader in [
    (PhotoInfo("coffee", "skimage.data.coffee()", (600, 400), (967, 968, 504), (74, 14, 481, 391),
               "an espresso cup on a saucer, seen from above"), _skimage("coffee")),
    (PhotoInfo("camera", "skimage.data.camera()", (512, 512), (872,), (226, 180, 409, 511),
               "a man with a film camera on a tripod (greyscale, repeated to three channels)"),
     _skimage("camera")),
    (PhotoInfo("rocket", "skimage.data.rocket()", (640, 427), (657, 744, 812), (302, 124, 339, 409),
               "a rocket on its launch pad between service towers, at dusk"), _skimage("rocket")),
    (PhotoInfo("chelsea", "skimage.data.chelsea()", (451, 300), (285, 281, 282), (10, 0, 397, 299),
               "the face of a tabby cat, filling most of the frame"), _skimage("chelsea")),
    (PhotoInfo("motorcycle", "skimage.data.stereo_motorcycle()[0]", (741, 500), (665, 670), (92, 95, 685, 451),
               "a red motorcycle in a garage (left view of a stereo pair)"), _skimage("stereo_motorcycle", 0)),
    (PhotoInfo("astronaut", "skimage.data.astronaut()", (512, 512), (812,), None,
               "an astronaut in an orange suit holding a helmet, a flag and a space shuttle model behind"),
     _skimage("astronaut")),
    (PhotoInfo("china", "sklearn.datasets.load_sample_image('china.jpg')", (640, 427), (442, 538, 698, 832),
               (62, 28, 371, 391), "a Chinese pagoda (Summer Palace, Beijing) above a lake"), _sklearn("china.jpg")),
    (PhotoInfo("flower", "sklearn.datasets.load_sample_image('flower.jpg')", (640, 427), (985,),
               (168, 85, 445, 359), "an orange dahlia on a dark green background"), _sklearn("flower.jpg")),
    (PhotoInfo("grace_hopper", "matplotlib.cbook.get_sample_data('grace_hopper.jpg')", (512, 600), (652,),
               (15, 22, 511, 599), "Grace Hopper in US Navy uniform, an American flag behind"),
     _matplotlib("grace_hopper.jpg")),
]}


def names() -> Tuple[str, ...]:
    """The names of the bundled photos, in a fixed order."""
    return tuple(_PHOTOS)


def is_photo(name: object) -> bool:
    """True when ``name`` is the name of a bundled photo."""
    return isinstance(name, str) and name in _PHOTOS


def _entry(name: str) -> Tuple[PhotoInfo, Callable[[], np.ndarray]]:
    if not is_photo(name):
        close = difflib.get_close_matches(str(name), list(_PHOTOS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"no bundled photo named {name!r}{hint}; the photos are: {', '.join(_PHOTOS)}")
    return _PHOTOS[name]


def info(name: str) -> PhotoInfo:
    """The classes, box and source of the photo ``name``.

    Raises
    ------
    InputError
        ``name`` is not one of :func:`names` (the message lists them).
    """
    return _entry(name)[0]


def load(name: str) -> "PIL.Image.Image":
    """The photo ``name`` as an RGB PIL image at its own resolution, read from its package.

    Returns
    -------
    PIL.Image.Image
        Mode ``RGB``, size :attr:`PhotoInfo.size`.

    Raises
    ------
    InputError
        Unknown ``name`` (the message lists the photos), or its package is not installed.
    """
    from PIL import Image

    entry, read = _entry(name)
    array = np.asarray(read())
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    image = Image.fromarray(np.ascontiguousarray(array[:, :, :3]).astype(np.uint8), mode="RGB")
    if image.size != entry.size:  # a package changed its photo: the boxes no longer fit it
        raise InputError(f"the photo {name!r} from {entry.source} is {image.size[0]} x {image.size[1]} px, not the "
                         f"{entry.size[0]} x {entry.size[1]} px its box was drawn on")
    return image


def box_mask(name: str, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """The pixels of the photo ``name`` (resized to ``size``) that lie in its box.

    Parameters
    ----------
    name : str
        A photo with a box.
    size : (int, int), optional
        (W, H) of the resized frame (default: the photo's own size); a pixel belongs to the
        box when its centre lies inside the box scaled to that frame.

    Returns
    -------
    numpy.ndarray
        (H, W) bool.

    Raises
    ------
    InputError
        Unknown ``name``, or the photo has no box.
    """
    entry = info(name)
    if entry.box is None:
        raise InputError(f"the photo {name!r} has no box (no single object dominates it)")
    width, height = entry.size if size is None else (int(size[0]), int(size[1]))
    x0, y0, x1, y1 = entry.box
    cx = (np.arange(width) + 0.5) * entry.size[0] / width  # pixel centres in the photo's frame
    cy = (np.arange(height) + 0.5) * entry.size[1] / height
    inside_x = (cx >= x0) & (cx <= x1 + 1)
    inside_y = (cy >= y0) & (cy <= y1 + 1)
    return inside_y[:, None] & inside_x[None, :]
