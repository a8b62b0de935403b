"""attribmap.experiments.published (benchmarks/reproduce_paper.py): the published CAM figures and recipe."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attribmap.experiments.published import (
    METRIC,
    PUBLISHED,
    WSOL_ARCH,
    cam_recipe,
    comparison_line,
    published_value,
    reproduce,
)
from attribmap.errors import AttribmapError

ROOT = Path(__file__).resolve().parents[1]


def test_the_published_cam_figures():
    assert PUBLISHED[("cub", "resnet50")] == 63.0
    assert PUBLISHED[("imagenet", "vgg16")] == 60.0
    assert PUBLISHED[("openimages", "inception_v3")] == 63.2
    assert METRIC["openimages"] == "PxAP" and METRIC["cub"] == "MaxBoxAccV2"
    assert len(PUBLISHED) == len(METRIC) * len(WSOL_ARCH)
    assert published_value("cub", "vgg16") == 63.7
    with pytest.raises(AttribmapError, match="'mnist'"):
        published_value("mnist", "resnet50")


def test_cam_recipe_follows_the_protocol():
    recipe = cam_recipe("cub", "resnet50")
    assert recipe.task == "classifier" and recipe.arch == "resnet50_wsol"
    assert (recipe.epochs, recipe.lr_step_size, recipe.schedule) == (50, 15, "step")
    assert (recipe.optimizer, recipe.momentum, recipe.batch_size, recipe.image_size) == ("sgd", 0.9, 32, 224)
    assert recipe.weight_decay == 1e-4 and recipe.weights == "DEFAULT" and recipe.blank_fraction == 0.0
    vgg = cam_recipe("imagenet", "vgg16", lr=0.01, weights=None, epochs=2)
    assert (vgg.arch, vgg.epochs, vgg.weight_decay, vgg.lr, vgg.weights) == ("vgg16_gap", 2, 5e-4, 0.01, None)
    with pytest.raises(AttribmapError, match="unknown dataset 'voc'"):
        cam_recipe("voc", "resnet50")


def test_comparison_line_names_both_figures():
    results = {"extractors": {"cam": {"MaxBoxAccV2": 61.25, "PxAP": 50.0}}}
    assert comparison_line(results, "cub", "resnet50") == \
        "CAM MaxBoxAccV2, cub / resnet50: measured 61.2, published 63.0 (cub / resnet50)"
    line = comparison_line(results, "openimages", "vgg16", synthetic=True, seconds=12.4)
    assert line == "CAM PxAP, synthetic suite (reference only): measured 50.0, published 58.3 (openimages / vgg16); 12 s"
    assert "measured n/a" in comparison_line({"extractors": {"cam": {}}}, "cub", "vgg16")


def test_reproduce_needs_data_unless_synthetic(tmp_path):
    with pytest.raises(AttribmapError, match="data="):
        reproduce(tmp_path, dataset="cub", arch="resnet50")
    with pytest.raises(AttribmapError, match="no published CAM figure"):
        reproduce(tmp_path, dataset="cub", arch="resnet18", data="somewhere")


@pytest.mark.slow
def test_reproduce_paper_script_runs_end_to_end_on_the_synthetic_suite(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce_paper.py"), "--synthetic",
                           "--delta", "0.01", "--out", str(tmp_path / "repro")],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "CAM MaxBoxAccV2, synthetic suite (reference only): measured " in done.stdout
    assert "published 63.0 (cub / resnet50)" in done.stdout
    assert (tmp_path / "repro" / "report" / "results.json").is_file()
    assert (tmp_path / "repro" / "cam_classifier.pt").is_file()
