"""Training reads every dataset format bench reads (attribmap.data.formats): CUB as distributed."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from attribmap.data.formats import detect_format, open_split
from attribmap.train.data import load_training_data


@pytest.fixture
def cub_root(tmp_path):
    """CUB-200-2011 as distributed: two classes, six train and two test images."""
    root = str(tmp_path / "CUB_200_2011")
    rng = np.random.default_rng(0)
    paths, labels, flags, boxes = [], [], [], []
    for number in range(8):
        cls = 1 + number % 2
        path = f"00{cls}.Bird_{cls}/b_{number}.jpg"
        os.makedirs(os.path.dirname(os.path.join(root, "images", path)), exist_ok=True)
        pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(root, "images", path))
        paths.append(path)
        labels.append(cls)
        flags.append(1 if number < 6 else 0)
        boxes.append("2.0 3.0 20.0 25.0")
    columns = {"images.txt": paths, "image_class_labels.txt": labels, "train_test_split.txt": flags,
               "bounding_boxes.txt": boxes}
    for name, values in columns.items():  # "<image_id> <value>" lines, 1-based ids
        text = "".join(f"{number} {value}\n" for number, value in enumerate(values, start=1))
        with open(os.path.join(root, name), "w") as handle:
            handle.write(text)
    return root


def test_training_reads_cub_as_distributed(cub_root):
    assert detect_format(cub_root) == "cub"
    data = load_training_data(cub_root, 32, holdout_fraction=0.34, seed=0, split="train")
    assert data.num_classes == 2
    assert sorted(data.train_labels + data.holdout_labels) == [0, 0, 0, 1, 1, 1]
    assert len(data.holdout_labels) == 2 and len(data.train) == 4
    item = data.train[0]
    assert tuple(item["image"].shape) == (3, 32, 32) and "mask" not in item
    dataset, kind = open_split(cub_root, "test")
    assert kind == "cub" and len(dataset) == 2


def test_train_classifier_on_cub(cub_root, tmp_path):
    from attribmap.train import load_checkpoint, train_classifier

    path, history = train_classifier(cub_root, tmp_path / "cub.pt", image_size=32, epochs=1, batch_size=4,
                                     progress=False)
    assert path.is_file() and len(history["epochs"]) == 1
    assert load_checkpoint(path)["task"] == "classifier"
