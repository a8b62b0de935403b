"""Reference rows of a version-2 suite and the validity check built on them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attribmap.data import MetadataError
from attribmap.data.synthetic import (
    CENTRE_SIGMA,
    REFERENCE_ROWS,
    VALIDITY_MARGIN,
    check_suite,
    format_reference_table,
    generate_suite,
    load_reference_ground_truth,
    reference_maps,
    score_reference_rows,
)
from attribmap.data.synthetic.reference import centre_prior, maps_from_ground_truth
from attribmap.errors import AttribmapError
from attribmap.evaluate import evaluate_maps


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("reference_suite"))
    generate_suite(out, classes=4, per_class=1, val_per_class=0, test_per_class=5, pretrain_per_class=0, size=64,
                   seed=2)
    return out


@pytest.fixture(scope="module")
def scores(suite):
    return score_reference_rows(suite, "test", engine="opencv")


def test_maps_shapes_and_relations(suite):
    maps = reference_maps(suite, "test", grid=8)
    assert list(maps) == list(REFERENCE_ROWS)
    for name in ("object", "parts", "body", "centre"):
        assert maps[name].shape == (20, 224, 224) and maps[name].dtype == torch.float32
    assert maps["pooled"].shape == (20, 8, 8)
    obj, parts, body = maps["object"], maps["parts"], maps["body"]
    assert set(torch.unique(obj).tolist()) == {0.0, 1.0}
    assert torch.equal(parts + body, obj) and not (parts * body).any()  # parts and body partition the object
    assert (parts.sum(dim=(1, 2)) > 0).all() and body.sum() > 3 * parts.sum()
    # area average to 28x28 cells keeps each image's mean coverage
    assert torch.allclose(maps["pooled"].mean(dim=(1, 2)), obj.mean(dim=(1, 2)), atol=1e-6)
    assert torch.equal(maps["centre"][0], maps["centre"][7])
    centre = maps["centre"][0]
    assert centre.argmax() // 224 in (111, 112) and centre.max() <= 1.0
    expected = np.exp(-((0.5 / 224 - 0.5) ** 2 * 2) / (2 * CENTRE_SIGMA ** 2))
    assert float(centre[0, 0]) == pytest.approx(expected, rel=1e-5)


def test_object_row_matches_the_ground_truth_frame(suite):
    from attribmap.evaluate.frame import union_mask

    gt = load_reference_ground_truth(suite, "test")
    maps = maps_from_ground_truth(gt, rows=("object",))
    for index in (0, 9):
        assert np.array_equal(maps["object"][index].numpy() > 0, union_mask(gt.objects[index], 224))
    assert all(len(b) == len(o) for b, o in zip(gt.boxes, gt.objects))


def test_image_ids_select_and_order(suite):
    gt = load_reference_ground_truth(suite, "test")
    chosen = [gt.ids[3], gt.ids[0]]
    maps = reference_maps(suite, "test", image_ids=chosen, rows=("object", "pooled"), grid=4)
    full = reference_maps(suite, "test", rows=("object",))
    assert list(maps) == ["object", "pooled"] and maps["pooled"].shape == (2, 4, 4)
    assert torch.equal(maps["object"][0], full["object"][3]) and torch.equal(maps["object"][1], full["object"][0])
    with pytest.raises(MetadataError, match="'images/test/nope.png' is not in split 'test'"):
        reference_maps(suite, "test", image_ids=["images/test/nope.png"])
    with pytest.raises(MetadataError, match="unknown reference rows"):
        reference_maps(suite, "test", rows=("object", "cam"))
    with pytest.raises(MetadataError, match="grid must be an int"):
        reference_maps(suite, "test", grid=0)


def test_scores_are_the_protocol_on_those_maps(suite, scores):
    assert list(scores) == list(REFERENCE_ROWS)
    assert scores["object"]["MaxBoxAcc"] == 100.0 and scores["object"]["PxAP"] == pytest.approx(100.0)
    assert scores["parts"]["MaxBoxAccV2"] < scores["body"]["MaxBoxAccV2"] <= 100.0
    assert scores["pooled"]["MaxBoxAccV2"] <= scores["object"]["MaxBoxAccV2"]
    gt = load_reference_ground_truth(suite, "test")
    maps = maps_from_ground_truth(gt, rows=("parts",))
    direct = evaluate_maps(maps["parts"], boxes=gt.boxes, image_sizes=gt.sizes, masks=gt.union(),
                           ignore=gt.ignore, engine="opencv")
    assert direct["MaxBoxAccV2"] == scores["parts"]["MaxBoxAccV2"] and direct["PxAP"] == scores["parts"]["PxAP"]


def test_validity_check_on_a_tiny_suite(scores):
    check = check_suite(scores)
    assert check.margin == VALIDITY_MARGIN == 15.0
    assert check.ground_truth_ok and check.passed and not check.complete and check.cam_ok is None
    text = str(check)
    assert "parts only" in text and "not checked here" in text and "ground-truth part only" in text
    assert check_suite(scores, cam=check.centre + 1.0).passed
    below = check_suite(scores, cam={"MaxBoxAccV2": check.centre - 1.0})
    assert below.complete and below.cam_ok is False and not below.passed and "FAIL CAM" in str(below)


def test_validity_check_rule():
    def rows(parts, centre, pooled):
        return {"parts": {"MaxBoxAccV2": parts}, "centre": {"MaxBoxAccV2": centre}, "pooled": {"MaxBoxAccV2": pooled}}

    assert check_suite(rows(65.0, 20.0, 80.0)).passed  # exactly the margin below
    parts_close = check_suite(rows(65.1, 20.0, 80.0))
    assert not parts_close.parts_ok and parts_close.centre_ok and not parts_close.passed
    centre_close = check_suite(rows(10.0, 70.0, 80.0))
    assert centre_close.parts_ok and not centre_close.centre_ok and "NOT valid" in str(centre_close)
    assert check_suite(rows(60.0, 60.0, 80.0), margin=10.0).passed
    with pytest.raises(AttribmapError, match="lack 'pooled'"):
        check_suite({"parts": {"MaxBoxAccV2": 1.0}, "centre": {"MaxBoxAccV2": 1.0}})
    with pytest.raises(AttribmapError, match="cam must be a MaxBoxAccV2 number"):
        check_suite(rows(1.0, 1.0, 80.0), cam="high")
    with pytest.raises(AttribmapError, match="margin must be a number >= 0"):
        check_suite(rows(1.0, 1.0, 80.0), margin=-1)


def test_table_lists_every_row(scores):
    table = format_reference_table(scores, grid=8)
    lines = table.splitlines()
    assert len(lines) == 2 + len(REFERENCE_ROWS) and "MaxBoxAccV2" in lines[0]
    assert "whole object pooled to 8x8" in table and f"sigma {CENTRE_SIGMA:g}" in table
    assert f"{scores['body']['MaxBoxAccV2']:.1f}" in lines[4]


def test_centre_prior_is_a_gaussian():
    prior = centre_prior(100, sigma=0.1)
    peak = np.exp(-(2 * 0.005 ** 2) / (2 * 0.1 ** 2))  # the four pixels next to the centre
    assert prior.shape == (100, 100) and float(prior.max()) == pytest.approx(peak, rel=1e-6)
    assert torch.equal(prior, prior.T) and torch.equal(prior, prior.flip(0))


def test_version_1_suites_have_no_reference_rows(tmp_path):
    out = str(tmp_path / "v1")
    generate_suite(out, classes=2, per_class=1, val_per_class=0, test_per_class=1, size=40, version=1)
    with pytest.raises(MetadataError, match="localization_parts.txt: reference rows need the parts and body masks"):
        reference_maps(out, "test")
