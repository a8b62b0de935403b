"""CUBDataset: the CUB-200-2011 files as distributed."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from attribmap.data import CUBDataset, MetadataError


def _write(root, name, lines):
    with open(os.path.join(root, name), "w") as handle:
        handle.write("".join(line + "\n" for line in lines))


@pytest.fixture
def cub_root(tmp_path):
    root = str(tmp_path / "CUB_200_2011")
    paths = ["001.Black_footed_Albatross/a_1.jpg", "001.Black_footed_Albatross/a_2.jpg", "003.Sooty/s_1.jpg"]
    sizes = [(50, 40), (30, 60), (20, 20)]
    for path, size in zip(paths, sizes):
        os.makedirs(os.path.dirname(os.path.join(root, "images", path)), exist_ok=True)
        Image.new("RGB", size, (255, 0, 0)).save(os.path.join(root, "images", path))
    _write(root, "images.txt", [f"{i + 1} {p}" for i, p in enumerate(paths)])
    _write(root, "image_class_labels.txt", ["1 1", "2 1", "3 3"])
    _write(root, "train_test_split.txt", ["1 1", "2 0", "3 0"])
    _write(root, "bounding_boxes.txt", ["1 2.0 3.0 45.5 30.0",
                                        "2 0.0 0.0 30.0 60.0", "3 4.0 5.0 6.0 7.0"])
    _write(root, "classes.txt", ["1 001.Black_footed_Albatross", "2 002.Laysan", "3 003.Sooty"])
    return root


def test_splits_labels_boxes(cub_root):
    test = CUBDataset(cub_root, "test")
    assert test.ids == ["001.Black_footed_Albatross/a_2.jpg", "003.Sooty/s_1.jpg"]
    assert test.labels == [0, 2]  # 1-based class ids -> 0-based
    assert test.num_classes == 3
    assert test.class_names == ["001.Black_footed_Albatross", "002.Laysan", "003.Sooty"]
    item = test[1]
    assert item["boxes"].tolist() == [[4, 5, 10, 12]]  # x1 = x + w, y1 = y + h
    assert item["size"] == (20, 20)
    assert "mask" not in item
    # x + w == W is accepted (a box touching the right border)
    assert test[0]["boxes"].tolist() == [[0, 0, 30, 60]]
    train = CUBDataset(cub_root, "train")
    assert train.ids == ["001.Black_footed_Albatross/a_1.jpg"]
    assert train[0]["boxes"].tolist() == [[2, 3, 47, 33]]  # int(2.0 + 45.5) = 47
    assert len(CUBDataset(cub_root, "all")) == 3


def test_segmentations_majority_threshold(cub_root):
    directory = os.path.join(cub_root, "segmentations", "003.Sooty")
    os.makedirs(directory)
    grey = np.array([[0, 51, 102], [153, 204, 255]], dtype=np.uint8)
    mask = np.zeros((20, 20), dtype=np.uint8)
    mask[:2, :3] = grey
    Image.fromarray(mask).save(os.path.join(directory, "s_1.png"))
    os.makedirs(os.path.join(cub_root, "segmentations", "001.Black_footed_Albatross"))
    for name, size in (("a_1.png", (50, 40)), ("a_2.png", (30, 60))):
        Image.new("L", size, 0).save(os.path.join(cub_root, "segmentations", "001.Black_footed_Albatross", name))
    item = CUBDataset(cub_root, "test")[1]
    assert item["mask"].sum() == 3  # 153, 204, 255 > 127
    assert item["ignore"].sum() == 0
    assert CUBDataset(cub_root, "test", segmentation_threshold=0.5)[1]["mask"].sum() == 5
    assert "mask" not in CUBDataset(cub_root, "test", segmentations=False)[1]
    os.remove(os.path.join(directory, "s_1.png"))
    with pytest.raises(MetadataError, match="segmentation of image '003.Sooty/s_1.jpg' not found"):
        CUBDataset(cub_root, "test")


def test_malformed_cub_files(cub_root):
    _write(cub_root, "bounding_boxes.txt", ["1 2 3 4 5", "2 0 0 30", "3 4 5 6 7"])
    with pytest.raises(MetadataError, match=r"bounding_boxes.txt:2: expected"):
        CUBDataset(cub_root, "test")
    _write(cub_root, "bounding_boxes.txt", ["1 2 3 4 5", "2 0 0 31 60", "3 4 5 6 7"])
    with pytest.raises(MetadataError, match=r"bounding_boxes.txt:2 .*\(0, 0, 31, 60\) lies outside .*\(30, 60\)"):
        CUBDataset(cub_root, "test")
    _write(cub_root, "bounding_boxes.txt", ["1 2 3 4 5", "2 0 0 x 6", "3 4 5 6 7"])
    with pytest.raises(MetadataError, match=r"bounding_boxes.txt:2: w must be a number, got 'x'"):
        CUBDataset(cub_root, "test")
    _write(cub_root, "bounding_boxes.txt", ["1 2 3 4 5", "3 4 5 6 7"])
    with pytest.raises(MetadataError, match="bounding_boxes.txt: no entry for image id 2"):
        CUBDataset(cub_root, "test")


def test_bad_split_flag_class_and_missing_image(cub_root):
    _write(cub_root, "train_test_split.txt", ["1 1", "2 2", "3 0"])
    with pytest.raises(MetadataError, match="train_test_split.txt:2: is_training_image must be 0 or 1"):
        CUBDataset(cub_root, "test")
    _write(cub_root, "train_test_split.txt", ["1 1", "2 0", "3 0"])
    _write(cub_root, "image_class_labels.txt", ["1 1", "2 0", "3 3"])
    with pytest.raises(MetadataError, match="image_class_labels.txt:2: class id must be >= 1"):
        CUBDataset(cub_root, "test")
    _write(cub_root, "image_class_labels.txt", ["1 1", "2 1", "3 3"])
    os.remove(os.path.join(cub_root, "images", "003.Sooty", "s_1.jpg"))
    with pytest.raises(MetadataError, match="s_1.jpg"):
        CUBDataset(cub_root, "test")
    with pytest.raises(ValueError, match="split"):
        CUBDataset(cub_root, "val")
    with pytest.raises(MetadataError, match="missing CUB file"):
        CUBDataset(os.path.dirname(cub_root), "test")
