"""Dataset readers against the real files: sizes, boxes, labels, unreadable images; `attribmap check`."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from attribmap.cli import main
from attribmap.data import MetadataError, WSOLDataset
from attribmap.data.check import check_images
from attribmap.errors import ImageReadError


def _write(directory, name, lines):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as handle:
        handle.write("".join(line + "\n" for line in lines))


@pytest.fixture
def root(tmp_path):
    """Three images of 40 x 30 in root/metadata/test with one box each; image c is 16-bit mid-grey."""
    os.makedirs(tmp_path / "imgs")
    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "imgs" / "a.png")
    Image.new("RGB", (40, 30), (200, 10, 30)).save(tmp_path / "imgs" / "b.png")
    Image.fromarray(np.full((30, 40), 128 * 257, dtype=np.uint16)).save(tmp_path / "imgs" / "c.png")
    meta = tmp_path / "metadata" / "test"
    _write(meta, "image_ids.txt", ["imgs/a.png", "imgs/b.png", "imgs/c.png"])
    _write(meta, "class_labels.txt", ["imgs/a.png,0", "imgs/b.png,1", "imgs/c.png,1"])
    _write(meta, "image_sizes.txt", ["imgs/a.png,40,30", "imgs/b.png,40,30", "imgs/c.png,40,30"])
    _write(meta, "localization.txt", ["imgs/a.png,1,2,10,20", "imgs/b.png,0,0,39,29", "imgs/c.png,5,5,20,20"])
    return tmp_path


def test_sizes_file_is_checked_against_the_image_header(root):
    meta = root / "metadata" / "test"
    _write(meta, "image_sizes.txt", ["imgs/a.png,40,30", "imgs/b.png,80,60", "imgs/c.png,40,30"])
    with pytest.raises(MetadataError, match=r"image_sizes.txt:2: image 'imgs/b.png' is 40 x 30 pixels \(W x H\) but "
                                            r"the metadata gives \(W, H\) = \(80, 60\)"):
        WSOLDataset(root, "test")
    lazy = WSOLDataset(root, "test", check_sizes=False)  # then the item that is read says it
    with pytest.raises(MetadataError, match="image_sizes.txt:2"):
        lazy[1]


def test_items_decode_through_load_image(root):
    dataset = WSOLDataset(root, "test")
    grey = dataset[2]["image"]  # 16-bit mid-grey is read as 8-bit 128, not saturated to white
    expected = dataset.transform(Image.new("RGB", (40, 30), (128, 128, 128)))
    assert np.allclose(grey.numpy(), expected.numpy())
    (root / "imgs" / "b.png").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match=r"b.png.*not an image file"):
        WSOLDataset(root, "test")  # the header check names the file at opening
    with pytest.raises(ImageReadError, match=r"b.png.*not an image file"):
        WSOLDataset(root, "test", check_sizes=False)[1]


def test_label_out_of_range_names_the_image_and_line(root):
    with pytest.raises(MetadataError, match=r"class_labels.txt:2: image 'imgs/b.png' has label 1, out of range for "
                                            r"num_classes=1 \(expected 0..0\)"):
        WSOLDataset(root, "test", num_classes=1)


def test_check_images_lists_every_problem_with_file_and_line(root):
    meta = root / "metadata" / "test"
    _write(meta, "image_sizes.txt", ["imgs/a.png,40,30", "imgs/b.png,80,60", "imgs/c.png,40,30"])
    _write(meta, "localization.txt", ["imgs/a.png,1,2,10,20", "imgs/b.png,0,0,79,59", "imgs/c.png,5,5,20,20"])
    data = (root / "imgs" / "c.png").read_bytes()
    (root / "imgs" / "c.png").write_bytes(data[: len(data) // 2])  # truncated
    (root / "imgs" / "a.png").write_bytes(b"")
    problems = [str(p) for p in check_images(WSOLDataset(root, "test", check_sizes=False).records)]
    assert len(problems) == 4
    assert "image_ids.txt:1: cannot read image" in problems[0] and "empty" in problems[0]
    assert "image_sizes.txt:2: image 'imgs/b.png' is 40 x 30 pixels" in problems[1]
    assert "localization.txt:2: box (x0, y0, x1, y1) = (0, 0, 79, 59) of image 'imgs/b.png' lies outside" in problems[2]
    assert "image_ids.txt:3: cannot read image" in problems[3] and "truncated" in problems[3]


def test_cli_check_exit_status_and_output(root, capsys):
    assert main(["check", str(root), "--no-progress"]) == 0
    assert "all 3 images of split 'test'" in capsys.readouterr().err
    (root / "imgs" / "b.png").write_text("text named .png")
    assert main(["check", str(root), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines() == [
        f"{root / 'metadata' / 'test' / 'image_ids.txt'}:2: cannot read image {str(root / 'imgs' / 'b.png')!r}: "
        "not an image file PIL can identify (wrong extension or not an image?)"]
    assert "1 problem in split 'test'" in captured.err
    assert main(["check", str(root / "nowhere")]) == 2
    assert "dataset directory not found" in capsys.readouterr().err
