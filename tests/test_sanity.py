"""attribmap.sanity: model randomization leaves the model alone, maps decorrelate, constant maps are counted."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from attribmap.errors import AttribmapError
from attribmap.sanity import compare, model_randomization, randomization_blocks, reinitialise, spearman
from conftest import TinyGapNet, assert_same_state, model_state


def _images():
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _model():
    torch.manual_seed(0)
    return TinyGapNet(width=8).eval()


def test_blocks_rule():
    import torchvision

    assert randomization_blocks(torchvision.models.resnet18()) == ["conv1", "bn1", "layer1", "layer2", "layer3",
                                                                    "layer4", "fc"]

    class Wrapped(nn.Module):  # preprocessing around a network: descend into it; a ModuleList is expanded
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(3))
            self.net = nn.Module()
            self.net.stem = nn.Conv2d(3, 4, 3)
            self.net.blocks = nn.ModuleList([nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)])
            self.net.fc = nn.Linear(4, 2)

    assert randomization_blocks(Wrapped()) == ["net.stem", "net.blocks.0", "net.blocks.2", "net.fc"]
    declared = _model()
    declared.sanity_blocks = ["features.0", "features.2", "fc"]
    assert randomization_blocks(declared) == ["features.0", "features.2", "fc"]
    declared.sanity_blocks = ["features.9"]
    with pytest.raises(AttribmapError, match="features.9"):
        randomization_blocks(declared)


def test_reinitialise_is_seeded_and_keeps_the_global_rng():
    a, b = _model(), _model()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    reinitialise(a, "fc", seed=5)
    assert torch.equal(torch.rand(1), before)  # global random state untouched
    reinitialise(b, "fc", seed=5)
    assert torch.equal(a.fc.weight, b.fc.weight)
    assert not torch.equal(a.fc.weight, _model().fc.weight)
    assert torch.equal(a.features[0].weight, _model().features[0].weight)


def test_model_is_left_unchanged():
    model = _model()
    model.train()
    model.features[0].weight.requires_grad_(False)
    handle = model.fc.register_forward_hook(lambda *args: None)
    before = model_state(model)
    model_randomization(model, _images(), ["gradcam", "captum:Saliency"], blocks=["features.0", "fc"])
    assert_same_state(before, model_state(model))
    assert model.training
    handle.remove()


def test_gradcam_decorrelates_under_full_randomization():
    result = model_randomization(_model(), _images(), ["gradcam"], blocks=["features.0", "features.2", "fc"])
    entry = result.methods["gradcam"]
    assert result.stages == ["original", "fc", "features.2", "features.0"]
    assert entry["spearman"][0] == pytest.approx(1.0, abs=1e-9)
    assert entry["ssim"][0] == pytest.approx(1.0, abs=1e-9)
    assert entry["spearman_abs"][-1] < 0.5 and entry["hog"][-1] < 0.5  # ~0.0 measured: a wide margin
    assert entry["n_constant"] == [0, 0, 0, 0]
    assert set(result.independent["gradcam"]["stages"]) == {"fc", "features.2", "features.0"}
    assert result.maps["gradcam"].shape == (4, 32, 32)
    again = model_randomization(_model(), _images(), ["gradcam"], blocks=["features.0", "features.2", "fc"])
    assert again.methods == result.methods  # deterministic for a seed


class _ZeroHead(nn.Linear):
    """A classifier whose 'default initialiser' is zeros: randomizing it makes Grad-CAM constant."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


def test_constant_maps_are_counted_never_averaged():
    model = _model()
    head = _ZeroHead(16, 5)
    head.load_state_dict(model.fc.state_dict())
    model.fc = head
    result = model_randomization(model, _images(), ["gradcam"], blocks=["features.0", "fc"], independent=False)
    entry = result.methods["gradcam"]
    assert entry["n_constant"] == [0, 4, 4]
    assert entry["spearman"][1:] == [None, None] and entry["hog"][1:] == [None, None]
    assert entry["ssim"][1] is not None  # SSIM is defined for a constant map
    table = result.table("spearman")
    assert "-[4]" in table
    json.dumps(result.as_dict())  # None -> null, no NaN


def test_similarity_hand_cases():
    a = np.arange(16.0).reshape(4, 4)
    assert spearman(a, a ** 3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(a, np.ones((4, 4))))
    measures = compare(a - 8, -(a - 8))
    assert measures["spearman"] == pytest.approx(-1.0)
    assert measures["spearman_abs"] == pytest.approx(1.0)


def test_bad_inputs_are_one_line():
    with pytest.raises(AttribmapError, match="methods is empty"):
        model_randomization(_model(), _images(), [])
    with pytest.raises(AttribmapError, match="'nope'"):
        model_randomization(_model(), _images(), ["gradcam"], blocks=["nope"])
    with pytest.raises(AttribmapError, match="target"):
        model_randomization(_model(), _images(), ["gradcam"], target=[1, 2])


def test_cli_writes_json_table_and_figure(tmp_path, capsys):
    from PIL import Image

    from attribmap.cli import main

    paths = []
    for i in range(2):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    code = main(["sanity", *paths, "--model", "resnet18", "--methods", "gradcam", "--size", "32",
                 "--blocks", "layer4,fc", "--no-independent", "--out", str(tmp_path / "out")])
    staged = main(["sanity", *paths, "--model", "resnet18", "--methods", "gradcam", "--size", "32",
                   "--blocks", "layer3,layer4,fc", "--stages", "layer3", "--out", str(tmp_path / "staged")])
    assert staged == 0
    captured = capsys.readouterr()
    assert "sanity: independent layer3: stage 3 of 3" in captured.err
    staged_data = json.loads((tmp_path / "staged" / "sanity.json").read_text())
    assert staged_data["stages"] == ["original", "layer3"]
    assert staged_data["independent"]["gradcam"]["stages"] == ["layer3"]
    assert code == 0
    data = json.loads((tmp_path / "out" / "sanity.json").read_text())
    entry = data["methods"]["gradcam"]
    assert entry["stages"] == ["original", "fc", "layer4"]
    assert len(entry["spearman"]) == len(entry["ssim"]) == len(entry["hog"]) == 3
    assert (tmp_path / "out" / "sanity.png").stat().st_size > 1000
    assert "spearman_abs" in captured.out


def test_named_stages_equal_the_full_run_at_those_stages():
    blocks = ["features.0", "features.2", "fc"]
    full = model_randomization(_model(), _images(), ["gradcam", "gradcampp"], blocks=blocks, seed=3)
    lines = []
    part = model_randomization(_model(), _images(), ["gradcam", "gradcampp"], blocks=blocks, seed=3,
                               stages=["features.0", "fc"], progress=lines.append)
    assert [line.split(",")[0] for line in lines] == [
        "trained original: stage 1 of 5", "cascading fc: stage 2 of 5", "cascading features.0: stage 3 of 5",
        "independent fc: stage 4 of 5", "independent features.0: stage 5 of 5"]
    assert part.stages == ["original", "fc", "features.0"]  # cascade order; features.2 randomized, not compared
    assert part.independent["gradcam"]["stages"] == ["fc", "features.0"]
    for method in ("gradcam", "gradcampp"):
        for test, reference in ((part.methods, full.methods), (part.independent, full.independent)):
            got, want = test[method], reference[method]
            for i, stage in enumerate(got["stages"]):
                j = want["stages"].index(stage)
                for measure in ("spearman", "spearman_abs", "ssim", "hog", "n_constant"):
                    assert got[measure][i] == want[measure][j], (method, stage, measure)
    assert part.maps["gradcam"].shape == (3, 32, 32)
    upper = model_randomization(_model(), _images(), ["gradcam"], blocks=blocks, seed=3, stages=["features.2"],
                                independent=False)
    assert upper.stages == ["original", "features.2"]  # stops there: features.0 is never re-initialised
    assert upper.methods["gradcam"]["spearman_abs"][1] == full.methods["gradcam"]["spearman_abs"][2]
    # the last stage is the fully randomized model's: the cascade re-initialised features.2 too
    assert part.methods["gradcam"]["spearman_abs"][2] < 0.9


def test_bad_stages_name_the_blocks():
    with pytest.raises(AttribmapError, match=r"'layer9'.*features\.0"):
        model_randomization(_model(), _images(), ["gradcam"], blocks=["features.0", "fc"], stages=["layer9"])
    with pytest.raises(AttribmapError, match="no block"):
        model_randomization(_model(), _images(), ["gradcam"], blocks=["features.0", "fc"], stages=["original"])
    with pytest.raises(AttribmapError, match="not the string"):
        model_randomization(_model(), _images(), ["gradcam"], blocks=["features.0", "fc"], stages="fc")


def test_images_that_are_not_tensors_go_in_at_the_model_input_size():
    model = _model()
    model.input_size = 48
    picture = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    result = model_randomization(model, [picture], ["gradcam"], blocks=["features.0", "fc"], independent=False)
    assert tuple(result.image.shape) == (3, 48, 48)
    given = model_randomization(model, [picture], ["gradcam"], blocks=["features.0", "fc"], independent=False, size=40)
    assert tuple(given.image.shape) == (3, 40, 40)


def test_the_top_block_alone_reuses_the_cascades_first_stage(monkeypatch):
    from attribmap.sanity import randomization

    blocks, calls = ["features.0", "features.2", "fc"], []
    computed = randomization._maps
    monkeypatch.setattr(randomization, "_maps", lambda *a, **k: calls.append(model_state(a[0])) or computed(*a, **k))
    lines = []
    result = model_randomization(_model(), _images(), ["gradcam"], blocks=blocks, seed=3, progress=lines.append)
    assert len(calls) == 6  # original, 3 cascading, independent features.2 and features.0
    assert lines[4].startswith("independent fc: stage 5 of 7") and lines[4].endswith("the cascade's maps (the same weights)")
    cascading, alone = result.methods["gradcam"], result.independent["gradcam"]
    for measure in ("spearman", "spearman_abs", "ssim", "hog"):
        assert alone[measure][alone["stages"].index("fc")] == cascading[measure][cascading["stages"].index("fc")]
    # the premise: the top block re-initialised alone gives the cascade's first model exactly
    alone_model = _model()
    reinitialise(alone_model, "fc", 3)
    assert_same_state(model_state(alone_model), calls[1])


class _Stop(Exception):
    pass


def _measures(result):
    return {test: {m: {k: v for k, v in entry.items()} for m, entry in part.items()}
            for test, part in (("cascading", result.methods), ("independent", result.independent))}


def test_stage_cache_goes_on_after_an_interruption_and_equals_a_run_without_it(tmp_path):
    blocks, methods = ["features.0", "features.2", "fc"], ["gradcam", "captum:Saliency"]
    full = model_randomization(_model(), _images(), methods, blocks=blocks, seed=3)

    def stop_after_two(line):
        if "stage 2 of" in line:
            raise _Stop(line)

    with pytest.raises(_Stop):
        model_randomization(_model(), _images(), methods, blocks=blocks, seed=3, cache=tmp_path / "c",
                            progress=stop_after_two)
    assert len(list((tmp_path / "c").glob("*.pt"))) == 4  # original and fc, two methods each
    lines = []
    resumed = model_randomization(_model(), _images(), methods, blocks=blocks, seed=3, cache=tmp_path / "c",
                                  progress=lines.append)
    assert [line.endswith("2 of 2 methods from the cache") for line in lines] == [True, True] + [False] * 5
    assert _measures(resumed) == _measures(full)
    assert np.array_equal(resumed.maps["gradcam"], full.maps["gradcam"])
    assert len(list((tmp_path / "c").glob("*.pt"))) == 12  # 6 stages x 2 methods (independent fc reused)

    lines.clear()  # one more method: the two cached ones are read, only the new one computed
    more = model_randomization(_model(), _images(), methods + ["gradcampp"], blocks=blocks, seed=3,
                               cache=tmp_path / "c", progress=lines.append)
    assert all(line.endswith("2 of 3 methods from the cache") or "independent fc" in line for line in lines)
    assert _measures(more)["cascading"]["gradcam"] == _measures(full)["cascading"]["gradcam"]

    lines.clear()  # other weights, another seed or other images: nothing is read
    changed = _model()
    with torch.no_grad():
        changed.fc.bias.add_(1e-3)
    for model, images, seed in ((changed, _images(), 3), (_model(), _images(), 4), (_model(), _images()[:2], 3)):
        model_randomization(model, images, methods, blocks=blocks, seed=seed, cache=tmp_path / "c",
                            progress=lines.append)
    assert not any("from the cache" in line for line in lines)


def test_a_damaged_cache_file_is_computed_again(tmp_path):
    blocks = ["features.0", "fc"]
    first = model_randomization(_model(), _images(), ["gradcam"], blocks=blocks, independent=False, cache=tmp_path)
    damaged = sorted(tmp_path.glob("cascading-fc-*.pt"))
    assert len(damaged) == 1
    damaged[0].write_bytes(b"not a torch file")
    lines = []
    again = model_randomization(_model(), _images(), ["gradcam"], blocks=blocks, independent=False, cache=tmp_path,
                                progress=lines.append)
    assert _measures(again) == _measures(first)
    assert [("from the cache" in line) for line in lines] == [True, False, True]
    with pytest.raises(AttribmapError, match="is a file"):
        model_randomization(_model(), _images(), ["gradcam"], blocks=blocks, cache=damaged[0])


def test_cli_cache_flag(tmp_path, capsys):
    from PIL import Image

    from attribmap.cli import main

    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    args = ["sanity", str(path), "--model", "resnet18", "--methods", "gradcam", "--size", "32", "--blocks",
            "layer4,fc", "--no-independent", "--cache", str(tmp_path / "cache")]
    torch.manual_seed(0)  # the same random resnet18 both times (other weights would share nothing)
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert "from the cache" not in capsys.readouterr().err
    torch.manual_seed(0)
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err.count("1 of 1 methods from the cache") == 3
    assert (tmp_path / "a" / "sanity.json").read_text().split('"seconds"')[0] == \
        (tmp_path / "b" / "sanity.json").read_text().split('"seconds"')[0]
    assert main(args[:-1] + [str(path), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "--cache" in err and "existing file" in err and len(err.strip().splitlines()) == 1
