"""WSOLDataset: wsolevaluation metadata reading, items, collate, and loud failures."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from attribmap.data import MetadataError, WSOLDataset, collate_wsol, legacy_transform, official_transform, \
    train_transform
from attribmap.errors import AttribmapError
from attribmap.inputs import IMAGENET_MEAN, IMAGENET_STD


def _image(root, relative, size, colour=(10, 200, 30)):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _mask(root, relative, size, rectangle, value=255):
    array = np.zeros((size[1], size[0]), dtype=np.uint8)
    x0, y0, x1, y1 = rectangle
    array[y0:y1 + 1, x0:x1 + 1] = value
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def _write(directory, name, lines):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w", newline="") as handle:
        handle.write("".join(lines))


@pytest.fixture
def box_root(tmp_path):
    """Two images (one with two boxes) in root/metadata/test."""
    root = str(tmp_path)
    _image(root, "imgs/a.jpg", (40, 30))
    _image(root, "imgs/b.png", (20, 50))
    meta = os.path.join(root, "metadata", "test")
    _write(meta, "image_ids.txt", ["imgs/a.jpg\n", "imgs/b.png\n"])
    _write(meta, "class_labels.txt", ["imgs/a.jpg,2\n", "imgs/b.png,0\n"])
    _write(meta, "image_sizes.txt", ["imgs/a.jpg,40,30\n", "imgs/b.png,20,50\n"])
    _write(meta, "localization.txt", ["imgs/a.jpg,1,2,10,20\n", "imgs/b.png,0,0,19,49\n", "imgs/a.jpg,5,5,40,30\n"])
    return root


def test_box_items_fields_and_values(box_root):
    dataset = WSOLDataset(box_root, "test")
    assert len(dataset) == 2
    assert dataset.labels == [2, 0]
    assert dataset.num_classes == 3
    assert dataset.ids == ["imgs/a.jpg", "imgs/b.png"]
    assert dataset.has_boxes and not dataset.has_masks
    item = dataset[0]
    assert set(item) == {"image", "label", "boxes", "size", "id"}
    assert item["image"].shape == (3, 224, 224)
    assert item["label"] == 2
    assert item["size"] == (40, 30)
    assert item["id"] == "imgs/a.jpg"
    assert item["boxes"].dtype == torch.int64
    assert item["boxes"].tolist() == [[1, 2, 10, 20], [5, 5, 40, 30]]  # x1 == W accepted
    assert dataset[1]["boxes"].tolist() == [[0, 0, 19, 49]]


def test_official_frame_values_are_imagenet_normalized(box_root):
    image = WSOLDataset(box_root, "test")[0]["image"]
    expected = [(c / 255 - m) / s for c, m, s in zip((10, 200, 30), IMAGENET_MEAN, IMAGENET_STD)]
    assert torch.allclose(image[:, 100, 100], torch.tensor(expected), atol=1e-5)


def test_transforms_shapes_and_validation():
    picture = Image.new("RGB", (50, 40), (0, 0, 0))
    assert official_transform(64)(picture).shape == (3, 64, 64)
    assert train_transform(32)(picture).shape == (3, 32, 32)
    assert legacy_transform(256, 224)(picture).shape == (3, 224, 224)
    with pytest.raises(ValueError, match="crop"):
        legacy_transform(100, 224)
    with pytest.raises(ValueError, match="size"):
        official_transform(0)


def test_custom_transform_and_num_classes(box_root):
    dataset = WSOLDataset(box_root, "test", transform=lambda image: image.size, num_classes=10)
    assert dataset[1]["image"] == (20, 50)
    assert dataset.num_classes == 10
    with pytest.raises(ValueError, match="num_classes=2"):
        WSOLDataset(box_root, "test", num_classes=2)


def test_metadata_root_parent_or_split_directory(box_root, tmp_path):
    os.rename(os.path.join(box_root, "metadata"), os.path.join(box_root, "elsewhere"))
    assert len(WSOLDataset(box_root, "test", metadata_root=os.path.join(box_root, "elsewhere"))) == 2
    assert len(WSOLDataset(box_root, "test", metadata_root=os.path.join(box_root, "elsewhere", "test"))) == 2
    with pytest.raises(MetadataError, match="split 'test'"):
        WSOLDataset(box_root, "test")


def test_collate_keeps_variable_boxes_as_lists(box_root):
    dataset = WSOLDataset(box_root, "test")
    batch = collate_wsol([dataset[0], dataset[1]])
    assert batch["image"].shape == (2, 3, 224, 224)
    assert batch["label"].tolist() == [2, 0]
    assert batch["size"].tolist() == [[40, 30], [20, 50]]
    assert [b.shape[0] for b in batch["boxes"]] == [2, 1]
    assert batch["id"] == ["imgs/a.jpg", "imgs/b.png"]
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, collate_fn=collate_wsol)
    assert next(iter(loader))["boxes"][0].tolist() == [[1, 2, 10, 20], [5, 5, 40, 30]]
    with pytest.raises(ValueError, match="empty"):
        collate_wsol([])


def test_split_without_localization_has_empty_boxes(box_root):
    os.remove(os.path.join(box_root, "metadata", "test", "localization.txt"))
    dataset = WSOLDataset(box_root, "test")
    assert not dataset.has_boxes
    assert dataset[0]["boxes"].shape == (0, 4)


def test_crlf_and_blank_lines_are_accepted(box_root):
    meta = os.path.join(box_root, "metadata", "test")
    _write(meta, "class_labels.txt", ["imgs/a.jpg,2\r\n", "\r\n", "imgs/b.png,0\r\n", "\n"])
    assert WSOLDataset(box_root, "test").labels == [2, 0]


@pytest.fixture
def mask_root(tmp_path):
    """OpenImages style: masks + ignore, no image_sizes.txt; image x has two instances."""
    root = str(tmp_path)
    _image(root, "test/c/x.jpg", (12, 10))
    _image(root, "test/c/y.jpg", (8, 6))
    _mask(root, "test/c/x_m1.png", (12, 10), (0, 0, 3, 3))
    _mask(root, "test/c/x_m2.png", (12, 10), (6, 6, 8, 8), value=1)  # any non-zero grey is foreground
    _mask(root, "test/c/x_ignore.png", (12, 10), (2, 2, 5, 5))
    _mask(root, "test/c/y_m1.png", (8, 6), (1, 1, 2, 2))
    meta = os.path.join(root, "metadata", "test")
    _write(meta, "image_ids.txt", ["test/c/x.jpg\n", "test/c/y.jpg\n"])
    _write(meta, "class_labels.txt", ["test/c/x.jpg,1\n", "test/c/y.jpg,1\n"])
    _write(meta, "localization.txt", ["test/c/x.jpg,test/c/x_m1.png,test/c/x_ignore.png\n",
                                      "test/c/x.jpg,test/c/x_m2.png,\n",
                                      "test/c/y.jpg,test/c/y_m1.png,\n"])
    return root


def test_mask_items_union_and_ignore_minus_foreground(mask_root):
    dataset = WSOLDataset(mask_root, "test")
    assert dataset.has_masks and not dataset.has_boxes
    item = dataset[0]
    assert item["size"] == (12, 10)  # read from the image: no image_sizes.txt
    expected = np.zeros((10, 12), dtype=bool)
    expected[0:4, 0:4] = True
    expected[6:9, 6:9] = True
    assert item["mask"].dtype == torch.bool
    assert np.array_equal(item["mask"].numpy(), expected)
    ignore = np.zeros((10, 12), dtype=bool)
    ignore[2:6, 2:6] = True
    assert np.array_equal(item["ignore"].numpy(), ignore & ~expected)
    assert item["ignore"].sum() == 16 - 4
    other = dataset[1]
    assert other["mask"].sum() == 4 and other["ignore"].sum() == 0
    batch = collate_wsol([item, other])
    assert [m.shape for m in batch["mask"]] == [(10, 12), (6, 8)]


def test_box_metadata_with_mask_extension(box_root):
    _mask(box_root, "m/a.png", (40, 30), (1, 2, 10, 20))
    _mask(box_root, "m/b.png", (20, 50), (0, 0, 19, 49))
    _write(os.path.join(box_root, "metadata", "test"), "localization_masks.txt",
           ["imgs/a.jpg,m/a.png,\n", "imgs/b.png,m/b.png,\n"])
    item = WSOLDataset(box_root, "test")[0]
    assert item["boxes"].shape == (2, 4) and item["mask"].sum() == 10 * 19


# ---------------------------------------------------------------- malformed input

def _expect(root, match, split="test"):
    with pytest.raises(MetadataError, match=match) as info:
        WSOLDataset(root, split)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttribmapError)
    return str(info.value)


def test_bad_label_line_names_file_and_line(box_root):
    _write(os.path.join(box_root, "metadata", "test"), "class_labels.txt", ["imgs/a.jpg,2\n", "imgs/b.png,cat\n"])
    message = _expect(box_root, "class label must be an integer")
    assert "class_labels.txt:2" in message and "'cat'" in message


def test_wrong_field_count_names_line(box_root):
    _write(os.path.join(box_root, "metadata", "test"), "image_sizes.txt", ["imgs/a.jpg,40,30\n", "imgs/b.png,20\n"])
    assert "image_sizes.txt:2" in _expect(box_root, "expected '<path>,<W>,<H>'")


def test_non_integer_coordinate_names_line(box_root):
    _write(os.path.join(box_root, "metadata", "test"), "localization.txt",
           ["imgs/a.jpg,1,2,10,20\n", "imgs/b.png,0,0.5,19,49\n"])
    assert "localization.txt:2" in _expect(box_root, "y0 must be an integer, got '0.5'")


def test_missing_image_names_its_path(box_root):
    os.remove(os.path.join(box_root, "imgs", "b.png"))
    assert os.path.join(box_root, "imgs", "b.png") in _expect(box_root, "not found")


def test_box_outside_image_is_rejected_with_values(box_root):
    _write(os.path.join(box_root, "metadata", "test"), "localization.txt",
           ["imgs/a.jpg,1,2,41,20\n", "imgs/b.png,0,0,19,49\n"])
    message = _expect(box_root, r"outside its image of size \(W, H\) = \(40, 30\)")
    assert "(1, 2, 41, 20)" in message and "localization.txt:1" in message


def test_negative_box_is_rejected(box_root):
    _write(os.path.join(box_root, "metadata", "test"), "localization.txt",
           ["imgs/a.jpg,-1,2,10,20\n", "imgs/b.png,0,0,19,49\n"])
    _expect(box_root, r"\(-1, 2, 10, 20\) lies outside")


def test_inverted_box_is_rejected(box_root):
    _write(os.path.join(box_root, "metadata", "test"), "localization.txt",
           ["imgs/a.jpg,10,2,9,20\n", "imgs/b.png,0,0,19,49\n"])
    _expect(box_root, r"\(10, 2, 9, 20\) has x1 < x0")


def test_duplicate_id_and_missing_entries(box_root):
    meta = os.path.join(box_root, "metadata", "test")
    _write(meta, "image_ids.txt", ["imgs/a.jpg\n", "imgs/a.jpg\n"])
    assert "image_ids.txt:2" in _expect(box_root, "duplicate image id 'imgs/a.jpg'")
    _write(meta, "image_ids.txt", ["imgs/a.jpg\n", "imgs/b.png\n"])
    _write(meta, "class_labels.txt", ["imgs/a.jpg,2\n"])
    _expect(box_root, "no label for image 'imgs/b.png'")
    _write(meta, "class_labels.txt", ["imgs/a.jpg,2\n", "imgs/b.png,0\n"])
    _write(meta, "localization.txt", ["imgs/a.jpg,1,2,10,20\n"])
    _expect(box_root, "no box for image 'imgs/b.png'")
    os.remove(os.path.join(meta, "image_sizes.txt"))
    _expect(box_root, "missing metadata file .*image_sizes.txt")


def test_missing_metadata_file_and_bad_split(box_root):
    os.remove(os.path.join(box_root, "metadata", "test", "class_labels.txt"))
    _expect(box_root, "missing metadata file .*class_labels.txt")
    _expect(box_root, "no metadata for split 'val'", split="val")
    with pytest.raises(ValueError, match="split"):
        WSOLDataset(box_root, "")
    with pytest.raises(MetadataError, match="not a directory"):
        WSOLDataset(os.path.join(box_root, "nope"), "test")


def test_mask_errors(mask_root):
    meta = os.path.join(mask_root, "metadata", "test")
    os.remove(os.path.join(mask_root, "test", "c", "x_m2.png"))
    assert os.path.join(mask_root, "test", "c", "x_m2.png") in _expect(mask_root, "mask 'test/c/x_m2.png'")
    _write(meta, "localization.txt", ["test/c/x.jpg,test/c/x_m1.png,test/c/x_ignore.png\n",
                                      "test/c/x.jpg,test/c/x_m1.png,test/c/x_ignore.png\n"])
    assert "localization.txt:2" in _expect(mask_root, "only an image's first line")
