"""attribmap.data.photos: the natural photos read from installed packages, their classes and boxes."""
from __future__ import annotations

import builtins

import numpy as np
import pytest

from attribmap.data import photos
from attribmap.errors import InputError

EXPECTED = ("coffee", "camera", "rocket", "chelsea", "motorcycle", "astronaut", "china", "flower", "grace_hopper")


def test_names_are_the_issue_list_in_a_fixed_order():
    assert photos.names() == EXPECTED
    assert all(photos.is_photo(n) for n in EXPECTED)
    assert not photos.is_photo("coffee.png") and not photos.is_photo(None)


@pytest.mark.parametrize("name", EXPECTED)
def test_each_photo_loads_as_rgb_at_its_recorded_size_with_a_box_inside_it(name):
    image = photos.load(name)
    entry = photos.info(name)
    assert image.mode == "RGB" and image.size == entry.size
    assert entry.classes and all(0 <= c < 1000 for c in entry.classes)
    assert len(set(entry.classes)) == len(entry.classes)
    if entry.box is not None:
        x0, y0, x1, y1 = entry.box
        w, h = entry.size
        assert 0 <= x0 < x1 < w and 0 <= y0 < y1 < h
        # a box, not the whole photo, and not a sliver
        assert 0.002 < (x1 - x0 + 1) * (y1 - y0 + 1) / (w * h) < 0.95


def test_camera_is_greyscale_repeated_to_three_equal_channels():
    array = np.asarray(photos.load("camera"))
    assert array.shape == (512, 512, 3)
    assert (array[:, :, 0] == array[:, :, 1]).all() and (array[:, :, 1] == array[:, :, 2]).all()


def test_astronaut_has_no_box_and_box_mask_says_so():
    assert photos.info("astronaut").box is None
    with pytest.raises(InputError, match="astronaut.*no box"):
        photos.box_mask("astronaut")


def test_bad_name_is_one_line_listing_the_names():
    with pytest.raises(InputError) as err:
        photos.load("cofee")
    text = str(err.value)
    assert "\n" not in text and "'cofee'" in text and "did you mean 'coffee'" in text
    assert all(n in text for n in EXPECTED)
    with pytest.raises(InputError, match="no bundled photo named 'nope'"):
        photos.info("nope")


def test_box_mask_at_own_size_is_the_inclusive_box():
    mask = photos.box_mask("rocket")
    x0, y0, x1, y1 = photos.info("rocket").box
    assert mask.shape == (427, 640) and mask.dtype == bool
    assert mask.sum() == (x1 - x0 + 1) * (y1 - y0 + 1)
    assert mask[y0, x0] and mask[y1, x1] and not mask[y0 - 1, x0] and not mask[y1, x1 + 1]


def test_box_mask_scales_to_a_resized_frame():
    mask = photos.box_mask("coffee", (224, 224))
    x0, y0, x1, y1 = photos.info("coffee").box
    assert mask.shape == (224, 224)
    expected = (x1 + 1 - x0) / 600 * (y1 + 1 - y0) / 400
    assert abs(mask.mean() - expected) < 0.02


def test_missing_scikit_learn_names_the_package(monkeypatch):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(InputError, match=r"scikit-learn.*attribmap\[pretrained\]"):
        photos.load("china")
    assert photos.load("coffee").size == (600, 400)  # the other sources do not need it


def test_cli_explain_unknown_photo_name_is_one_line_listing_the_names(tmp_path, capsys):
    from attribmap.cli import main

    code = main(["explain", "cofee", "--model", "resnet18", "--out", str(tmp_path / "x.png")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'cofee'" in err
    assert all(name in err for name in EXPECTED)
    assert not (tmp_path / "x.png").exists()
