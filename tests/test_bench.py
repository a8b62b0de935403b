"""attribmap.bench / attribmap bench: one pass, every extractor, same numbers as evaluate_maps."""
from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from attribmap.bench import (BenchConfig, BenchInterrupted, ProgressMismatch, batch_plan, detect_format,
                             parse_methods, run_benchmark)
from attribmap.bench import runner as runner_module
from attribmap.bench.extractors import ExtractorSuite
from attribmap.cli import main
from attribmap.errors import AttribmapError

POSTHOC = ("cam", "gradcam", "gradcampp", "dgl", "dgl-psb", "dgl-cem")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny suite (2 classes, 10 test images of ~48 px) and 1-epoch models at 32 px."""
    from attribmap.data.synthetic import generate_suite
    from attribmap.train import train_classifier, train_i2c, train_weightmap

    root = tmp_path_factory.mktemp("bench")
    suite = root / "suite"
    generate_suite(suite, classes=2, per_class=4, size=48, val_per_class=0, test_per_class=5)
    common = dict(epochs=1, batch_size=4, image_size=32, progress=False)
    train_classifier(suite, root / "cls.pt", **common)
    train_i2c(suite, root / "i2c.pt", **common)
    train_weightmap(suite, root / "wm.pt", classifier=root / "cls.pt", **common)
    return {"root": root, "suite": str(suite), "cls": str(root / "cls.pt"), "i2c": str(root / "i2c.pt"),
            "wm": str(root / "wm.pt")}


def _config(trained, **overrides) -> BenchConfig:
    values = dict(data=trained["suite"], checkpoint=trained["cls"], methods=POSTHOC, input_size=32,
                  batch_size=4, delta=0.01)
    values.update(overrides)
    return BenchConfig(**values)


def _metrics(results):
    """The numbers of every extractor, without timings."""
    drop = {"extract_s", "maps_per_s", "about", "shared_pass", "score_s"}
    return {name: {k: v for k, v in entry.items() if k not in drop} for name, entry in results["extractors"].items()}


def _direct_reference(trained, method: str, protocol: str = "official", delta: float = 0.01):
    """Maps computed with attribmap.explain (in the benchmark's batches of 4, so the floats are the
    same) and scored in one call of evaluate_maps."""
    import attribmap
    from attribmap.data.formats import input_transform
    from attribmap.data import WSOLDataset
    from attribmap.evaluate import evaluate_maps
    from attribmap.train import load_model

    dataset = WSOLDataset(trained["suite"], "test", transform=input_transform(protocol, 32))
    model = load_model(trained["cls"])
    items = [dataset[i] for i in range(len(dataset))]
    images = torch.stack([it["image"] for it in items])
    labels = torch.tensor([it["label"] for it in items])
    maps = torch.cat([attribmap.explain(model, images[i:i + 4], method=method, target=labels[i:i + 4], raw=True)
                      for i in range(0, len(items), 4)])
    with torch.no_grad():
        correct = (model(images).argmax(1) == labels).numpy()
    kwargs = dict(boxes=[it["boxes"].numpy() for it in items],
                  image_sizes=np.array([it["size"] for it in items]), correct=correct, delta=delta,
                  protocol=protocol)
    if protocol == "official":
        kwargs.update(masks=[it["mask"].numpy() for it in items], ignore=[it["ignore"].numpy() for it in items])
    return evaluate_maps(maps, **kwargs), correct


_FAITHFUL = dict(faithfulness=("deletion", "insertion", "drop", "road"), steps=4, road_percents=(30, 70))


def test_faithfulness_metrics_equal_evaluate_maps_on_the_same_maps(trained, tmp_path):
    """Deletion, insertion, average drop and ROAD of the benchmark (GT class, the main model)
    against evaluate_maps on maps computed apart, with the model and images given."""
    import attribmap
    from attribmap.data.formats import input_transform
    from attribmap.data import WSOLDataset
    from attribmap.evaluate import ModelInputs, evaluate_maps
    from attribmap.train import load_model

    out = tmp_path / "f"
    results = run_benchmark(_config(trained, methods=("gradcam",), faithfulness_batch_size=3, **_FAITHFUL), out,
                            grid_images=0)
    entry = results["extractors"]["gradcam"]
    dataset = WSOLDataset(trained["suite"], "test", transform=input_transform("official", 32))
    model = load_model(trained["cls"]).eval()
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    labels = torch.tensor([dataset[i]["label"] for i in range(len(dataset))])
    maps = torch.cat([attribmap.explain(model, images[i:i + 4], method="gradcam", target=labels[i:i + 4], raw=True)
                      for i in range(0, len(dataset), 4)])
    direct = evaluate_maps(maps, masks=[dataset[i]["mask"].numpy() for i in range(len(dataset))],
                           metrics=["deletion", "insertion", "drop", "road"],
                           inputs=ModelInputs(model, images, labels),
                           options={"steps": 4, "road.percents": (30, 70)})
    for key in ("Deletion", "Insertion", "AverageDrop", "IncreaseInConfidence", "ROAD_MoRF", "ROAD_LeRF"):
        assert entry[key] == pytest.approx(direct[key], abs=1e-6), key
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["protocol"]["faithfulness"]["deletion_baseline"] == "zeros"
    assert on_disk["protocol"]["faithfulness"]["batch_size"] == 3
    assert [m["name"] for m in on_disk["metrics"]][-4:] == ["deletion", "insertion", "drop", "road"]
    curves = np.load(out / "curves.npz")
    assert curves["gradcam/deletion_score"].shape == (5,) and curves["gradcam/road_morf"].shape == (2,)
    assert curves["gradcam/deletion_score"].mean() == pytest.approx(np.mean(direct["series"]["deletion_score"]),
                                                                  abs=1e-6)
    for figure in ("deletion_curves.png", "insertion_curves.png", "road_curves.png"):
        assert (out / figure).is_file(), figure
    assert "Faithfulness (target: the ground-truth class)" in (out / "results.md").read_text()


def test_batch_plan_deals_whole_batches_round_robin():
    assert batch_plan(10, 4) == [(0, [0, 1, 2, 3]), (1, [4, 5, 6, 7]), (2, [8, 9])]
    assert batch_plan(10, 4, rank=0, world_size=2) == [(0, [0, 1, 2, 3]), (2, [8, 9])]
    assert batch_plan(10, 4, rank=1, world_size=2) == [(1, [4, 5, 6, 7])]
    assert batch_plan(3, 4, rank=1, world_size=2) == []
    with pytest.raises(AttribmapError):
        batch_plan(10, 4, rank=2, world_size=2)


def test_parse_methods_keeps_order_and_drops_blanks_and_repeats():
    assert parse_methods(" cam,gradcam,,captum:Saliency,cam ") == ("cam", "gradcam", "captum:Saliency")
    assert parse_methods("") == ()


def test_config_rejects_bad_values(trained, tmp_path):
    with pytest.raises(AttribmapError, match="exactly one of"):
        BenchConfig(data=trained["suite"]).validated()
    with pytest.raises(AttribmapError, match="protocol"):
        _config(trained, protocol="strict").validated()
    with pytest.raises(AttribmapError, match="delta"):
        _config(trained, delta=1.5).validated()
    with pytest.raises(AttribmapError, match="unknown faithfulness metric 'all'"):
        _config(trained, faithfulness=("all",)).validated()
    with pytest.raises(AttribmapError, match="deletion_baseline"):
        _config(trained, faithfulness=("deletion",), deletion_baseline="grey").validated()
    with pytest.raises(AttribmapError, match="faithfulness_batch_size must be a positive int; got 0"):
        _config(trained, faithfulness=("deletion",), faithfulness_batch_size=0).validated()
    assert _config(trained, faithfulness=("deletion",)).validated().faithfulness_batch_size is None  # the device's
    with pytest.raises(FileNotFoundError, match="i2c"):
        _config(trained, i2c=str(tmp_path / "missing.pt")).validated()
    with pytest.raises(AttribmapError, match="weightmap"):
        _config(trained, methods=("cam", "weightmap")).validated()
    with pytest.raises(AttribmapError, match="not a dataset"):
        detect_format(str(tmp_path))
    assert detect_format(trained["suite"]) == "wsol"


def test_every_extractor_is_scored_and_the_report_is_written(trained, tmp_path):
    out = tmp_path / "report"
    config = _config(trained, methods=POSTHOC + ("captum:Saliency",), i2c=trained["i2c"], weightmap=trained["wm"])
    results = run_benchmark(config, out, grid_images=2)
    names = list(POSTHOC) + ["captum:Saliency", "i2c", "weightmap"]
    assert list(results["extractors"]) == names
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["protocol"]["name"] == "official" and on_disk["protocol"]["delta"] == 0.01
    assert on_disk["dataset"]["num_images"] == 10 and on_disk["dataset"]["has_masks"] is True
    assert on_disk["versions"]["torch"] == torch.__version__ and on_disk["seed"] == 0
    for name in names:
        entry = on_disk["extractors"][name]
        for key in ("MaxBoxAcc", "MaxBoxAccV2", "PxAP", "PointingGame", "Top1Loc", "maps_per_s"):
            assert key in entry, (name, key)
        per_iou = entry["MaxBoxAccV2_per_iou"]
        assert entry["MaxBoxAccV2"] == pytest.approx(np.mean([per_iou["30"], per_iou["50"], per_iou["70"]]))
        assert 0 <= entry["MaxBoxAcc"] <= 100 and 0 <= entry["PxAP"] <= 100
        # 10 images: every box accuracy is a multiple of 10 %
        assert entry["MaxBoxAcc"] / 10 == pytest.approx(round(entry["MaxBoxAcc"] / 10))
        assert entry["Top1Loc"] <= entry["MaxBoxAcc"] + 1e-9
    # the post-hoc methods share one pass, hence one rate
    assert len({on_disk["extractors"][n]["maps_per_s"] for n in POSTHOC}) == 1
    table = (out / "results.md").read_text().split("\n\n")
    first = next(part for part in table if part.startswith("| extractor"))  # the localization table
    rows = first.splitlines()[2:]
    assert [row.split("|")[1].strip() for row in rows] == names
    assert "| peak IoU |" in first and "| energy pointing |" in first and "Faithfulness" not in "".join(table)
    for figure in ("boxacc_curves.png", "pxap_pr_curves.png", "peak_iou_curves.png", "qualitative.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = np.load(out / "curves.npz")
    assert curves["cam/BoxAccV2@50"].shape == (100,)
    assert curves["cam/BoxAccV2@50"].max() == pytest.approx(on_disk["extractors"]["cam"]["MaxBoxAccV2_per_iou"]["50"])
    assert not (out / ".progress.pt").exists()


@pytest.mark.parametrize("method", ["cam", "dgl"])
def test_numbers_equal_evaluate_maps_on_maps_computed_one_image_at_a_time(trained, tmp_path, method):
    results = run_benchmark(_config(trained, methods=(method,)), tmp_path / "r", write_figures=False)
    reference, correct = _direct_reference(trained, method)
    entry = results["extractors"][method]
    for key in ("MaxBoxAcc", "MaxBoxAccV2", "PxAP", "PointingGame", "Top1Loc"):
        assert entry[key] == pytest.approx(reference[key], abs=1e-9), key
    assert entry["ClassifierTop1"] == pytest.approx(100 * correct.mean())


def test_legacy_protocol_matches_evaluate_maps(trained, tmp_path):
    results = run_benchmark(_config(trained, methods=("cam",), protocol="legacy", tau=0.2), tmp_path / "legacy",
                            grid_images=1)
    reference, _ = _direct_reference(trained, "cam", protocol="legacy")
    entry = results["extractors"]["cam"]
    assert entry["GTKnownLoc"] == pytest.approx(reference["GTKnownLoc"])
    assert entry["Top1Loc"] == pytest.approx(reference["Top1Loc"])
    assert "MaxBoxAcc" not in entry
    assert "legacy" in (tmp_path / "legacy" / "results.md").read_text()


@pytest.mark.parametrize("faithfulness", [("deletion", "drop"), ("deletion", "insertion", "drop", "road")],
                         ids=["deletion+drop", "every-faithfulness-metric"])
def test_interrupted_run_resumes_from_saved_batch_with_identical_numbers(trained, tmp_path, monkeypatch,
                                                                       faithfulness):
    config = _config(trained, methods=("cam", "gradcam"), weightmap=trained["wm"], faithfulness=faithfulness,
                     steps=3)
    whole = run_benchmark(config, tmp_path / "whole", write_figures=False)

    out = tmp_path / "resumed"
    with pytest.raises(BenchInterrupted):
        run_benchmark(config, out, save_every=1, stop_after_batches=2, write_figures=False)
    assert (out / ".progress.pt").is_file() and not (out / "results.json").exists()

    calls = []
    original = ExtractorSuite.run

    def counting(self, images, labels):
        calls.append(images.shape[0])
        return original(self, images, labels)

    monkeypatch.setattr(ExtractorSuite, "run", counting)
    messages = []
    resumed = run_benchmark(config, out, resume=True, write_figures=False, log=messages.append)
    assert calls == [2]  # 10 images in batches of 4: batches 0 and 1 were done, only [8, 9] is left
    assert any("resuming at batch 2" in m for m in messages)
    assert _metrics(resumed) == _metrics(whole)
    expected = {"deletion": {"Deletion"}, "insertion": {"Insertion"}, "drop": {"AverageDrop", "IncreaseInConfidence"},
                "road": {"ROAD_MoRF", "ROAD_LeRF", "ROAD_MoRF_accuracy", "ROAD_LeRF_accuracy"}}
    for name, entry in _metrics(resumed).items():  # every faithfulness number was scored and is a number
        for key in set().union(*(expected[m] for m in faithfulness)):
            assert np.isfinite(entry[key]), (name, key)
    assert resumed["timing"]["images_this_process"] == 10
    assert not (out / ".progress.pt").exists()


def test_resume_refuses_progress_of_other_settings(trained, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(BenchInterrupted):
        run_benchmark(_config(trained, methods=("cam",)), out, save_every=1, stop_after_batches=1,
                      write_figures=False)
    with pytest.raises(ProgressMismatch, match="other settings"):
        run_benchmark(_config(trained, methods=("cam",), delta=0.001), out, resume=True, write_figures=False)


def test_main_model_that_is_an_i2c_model_gives_i2c_maps(trained, tmp_path):
    results = run_benchmark(_config(trained, checkpoint=trained["i2c"], methods=("i2c",)), tmp_path / "i",
                            write_figures=False)
    separate = run_benchmark(_config(trained, methods=(), i2c=trained["i2c"]), tmp_path / "j",
                             write_figures=False)
    assert _metrics(results)["i2c"] == _metrics(separate)["i2c"]
    with pytest.raises(AttribmapError, match="I2C model"):
        run_benchmark(_config(trained, methods=("i2c",)), tmp_path / "k", write_figures=False)


def _differences(a, b, path=""):
    """Paths where two nested dicts of metrics differ (empty when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: missing on one side" for k in set(a) ^ set(b)]
        for key in sorted(set(a) & set(b)):
            out += _differences(a[key], b[key], f"{path}/{key}")
        return out
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sharded_worker(rank: int, world: int, port: int, config: BenchConfig, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    run_benchmark(config, out, write_figures=False)


def test_two_gloo_processes_give_the_single_process_numbers(trained, tmp_path):
    config = _config(trained, methods=("cam", "dgl"), i2c=trained["i2c"], **_FAITHFUL)
    # same intra-op thread count as the workers: torch's conv results are not bitwise equal
    # across thread counts, and a map value that moves across a histogram edge changes PxAP
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run_benchmark(config, tmp_path / "single", write_figures=False)
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "sharded"
    mp.spawn(_sharded_worker, args=(2, _free_port(), config, str(out)), nprocs=2, join=True)
    sharded = json.loads((out / "results.json").read_text())
    assert sharded["world_size"] == 2
    assert sharded["timing"]["images_this_process"] == 6  # rank 0 scored batches 0 and 2 (4 + 2 images)
    expected = json.loads(json.dumps(_metrics(single)))
    assert _differences(_metrics(sharded), expected) == []
    assert not list(out.glob(".progress*"))


def test_cli_bench_prints_table_and_report_path(trained, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["bench", "--data", trained["suite"], "--checkpoint", trained["cls"], "--methods", "cam,gradcam",
                 "--weightmap", trained["wm"], "--input-size", "32", "--batch-size", "5", "--delta", "0.01",
                 "--out", str(out), "--no-figures", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "| cam |" in printed and "| weightmap |" in printed
    assert f"report: {out.resolve() / 'results.md'}" in printed
    assert json.loads((out / "results.json").read_text())["config"]["batch_size"] == 5
    assert not (out / "qualitative.png").exists()


@pytest.mark.parametrize("extra, message", [
    (["--methods", "cam,nosuch"], "nosuch"),
    (["--weights", "w.pt"], "--weights goes with --model"),
    (["--delta", "0"], "delta"),
    (["--faithfulness", "deletion,nope"], "unknown faithfulness metric 'nope'"),
    (["--faithfulness", "road", "--road-percents", "0,50"], "road_percents"),
])
def test_cli_bench_bad_arguments_exit_2_with_one_line(trained, tmp_path, capsys, extra, message):
    code = main(["bench", "--data", trained["suite"], "--checkpoint", trained["cls"], "--out", str(tmp_path / "x"),
                 "--input-size", "32", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_bench_missing_data_directory(tmp_path, capsys):
    code = main(["bench", "--data", str(tmp_path / "none"), "--model", "resnet18", "--out", str(tmp_path / "o")])
    assert code == 2 and "dataset directory not found" in capsys.readouterr().err


def test_software_versions_name_the_libraries():
    versions = runner_module.software_versions()
    assert versions["torch"] == torch.__version__ and "attribmap" in versions and "captum" in versions


def test_cub_layout_is_detected_and_scores_like_the_same_boxes_in_wsol_metadata(trained, tmp_path):
    """The suite's test images written as CUB-200-2011 (one box each) and as wsolevaluation metadata."""
    import shutil

    from attribmap.data import WSOLDataset

    source = WSOLDataset(trained["suite"], "test")
    cub, wsol = tmp_path / "CUB_200_2011", tmp_path / "wsol"
    (cub / "images").mkdir(parents=True)
    (wsol / "metadata" / "test").mkdir(parents=True)
    (wsol / "images").mkdir()
    rows = {name: [] for name in ("images", "labels", "split", "boxes", "ids", "classes", "sizes", "loc")}
    for number, record in enumerate(source.records, start=1):
        name = os.path.basename(record.path)
        shutil.copy(record.path, cub / "images" / name)
        shutil.copy(record.path, wsol / "images" / name)
        x0, y0, x1, y1 = (int(v) for v in record.boxes[0])
        rows["images"].append(f"{number} {name}")
        rows["labels"].append(f"{number} {record.label + 1}")
        rows["split"].append(f"{number} 0")
        rows["boxes"].append(f"{number} {x0}.0 {y0}.0 {x1 - x0}.0 {y1 - y0}.0")
        rows["ids"].append(f"images/{name}")
        rows["classes"].append(f"images/{name},{record.label}")
        rows["sizes"].append(f"images/{name},{record.size[0]},{record.size[1]}")
        rows["loc"].append(f"images/{name},{x0},{y0},{x1},{y1}")
    for file, key in (("images.txt", "images"), ("image_class_labels.txt", "labels"),
                      ("train_test_split.txt", "split"), ("bounding_boxes.txt", "boxes")):
        (cub / file).write_text("\n".join(rows[key]) + "\n")
    for file, key in (("image_ids.txt", "ids"), ("class_labels.txt", "classes"), ("image_sizes.txt", "sizes"),
                      ("localization.txt", "loc")):
        (wsol / "metadata" / "test" / file).write_text("\n".join(rows[key]) + "\n")
    assert detect_format(str(cub)) == "cub" and detect_format(str(wsol)) == "wsol"
    from_cub = run_benchmark(_config(trained, data=str(cub), methods=("cam",)), tmp_path / "a", write_figures=False)
    from_wsol = run_benchmark(_config(trained, data=str(wsol), methods=("cam",)), tmp_path / "b",
                              write_figures=False)
    assert from_cub["dataset"]["format"] == "cub" and from_cub["dataset"]["has_masks"] is False
    assert "PxAP" not in from_cub["extractors"]["cam"]
    assert _metrics(from_cub) == _metrics(from_wsol)


def test_cli_resume_without_saved_progress_starts_from_the_beginning(trained, tmp_path, capsys):
    code = main(["bench", "--data", trained["suite"], "--checkpoint", trained["cls"], "--methods", "cam",
                 "--input-size", "32", "--delta", "0.01", "--out", str(tmp_path / "o"), "--resume", "--no-figures"])
    captured = capsys.readouterr()
    assert code == 0 and "starting from the beginning" in captured.err
    assert json.loads((tmp_path / "o" / "results.json").read_text())["dataset"]["num_images"] == 10


def test_extractor_specs_per_layer_aliases_and_checkpoint_models(trained, tmp_path):
    """One run scores cam at the automatic layer beside dgl at layer3 (one shared forward), and
    the --i2c / --weightmap aliases equal the NAME=CHECKPOINT specs."""
    mixed = run_benchmark(_config(trained, methods=("cam", "dgl@layer3"),
                                  extractors=(f"i2c={trained['i2c']}", f"weightmap={trained['wm']}")),
                          tmp_path / "mixed", write_figures=False)
    assert list(mixed["extractors"]) == ["cam", "dgl@layer3", "i2c", "weightmap"]
    about = {n: e["about"] for n, e in mixed["extractors"].items()}
    assert about["cam"]["layer"] == "layer4" and about["dgl@layer3"]["layer"] == "layer3"
    assert about["cam"]["kind"] == about["dgl@layer3"]["kind"] == "shared"
    assert about["i2c"]["kind"] == "own-model" and about["i2c"]["task"] == "i2c"
    assert about["i2c"]["layer"] == "classifier"
    assert about["weightmap"]["kind"] == "learned" and about["weightmap"]["layer"] is None
    at_layer3 = run_benchmark(_config(trained, methods=("dgl",), layer="layer3"), tmp_path / "l3",
                              write_figures=False)
    assert _metrics(mixed)["dgl@layer3"] == _metrics(at_layer3)["dgl"]
    aliases = run_benchmark(_config(trained, methods=("cam",), i2c=trained["i2c"], weightmap=trained["wm"]),
                            tmp_path / "alias", write_figures=False)
    for name in ("cam", "i2c", "weightmap"):
        assert _metrics(aliases)[name] == _metrics(mixed)[name], name


def test_extractor_spec_errors_come_before_any_work(trained, tmp_path):
    with pytest.raises(AttribmapError, match="scored from its checkpoint"):
        _config(trained, methods=("weightmap",)).validated()
    with pytest.raises(AttribmapError, match="listed twice"):
        _config(trained, methods=("cam", "cam")).validated()
    with pytest.raises(AttribmapError, match="unknown method 'gradcma'"):
        _config(trained, methods=("gradcma",)).validated()
    with pytest.raises(FileNotFoundError, match="weightmap checkpoint not found"):
        _config(trained, extractors=(f"weightmap={tmp_path / 'nope.pt'}",)).validated()
    with pytest.raises(AttribmapError, match="'weightmap' checkpoint; 'cam' needs one of"):
        run_benchmark(_config(trained, methods=(), extractors=(f"cam={trained['wm']}",)), tmp_path / "x",
                      write_figures=False)


def test_cli_extractor_and_faithfulness_flags(trained, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["bench", "--data", trained["suite"], "--checkpoint", trained["cls"], "--methods", "cam,dgl@layer3",
                 "--extractor", f"weightmap={trained['wm']}", "--input-size", "32", "--batch-size", "5",
                 "--delta", "0.01", "--no-figures", "--no-progress", "--out", str(out),
                 "--faithfulness", "insertion", "--steps", "3", "--insertion-baseline", "zeros"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| dgl@layer3 |" in printed and "| weightmap |" in printed and "insertion AUC" in printed
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["faithfulness"] == ["insertion"] and saved["config"]["insertion_baseline"] == "zeros"
    assert 0.0 <= saved["extractors"]["weightmap"]["Insertion"] <= 1.0


def test_per_class_scores_equal_evaluate_maps_on_each_class(trained, tmp_path):
    import attribmap
    from attribmap.data.formats import input_transform
    from attribmap.data import WSOLDataset
    from attribmap.evaluate import evaluate_maps
    from attribmap.train import load_model

    results = run_benchmark(_config(trained, methods=("cam",), per_class=True), tmp_path / "pc", write_figures=False)
    per_class = results["extractors"]["cam"]["per_class"]
    dataset = WSOLDataset(trained["suite"], "test", transform=input_transform("official", 32))
    model = load_model(trained["cls"])
    items = [dataset[i] for i in range(len(dataset))]
    images = torch.stack([it["image"] for it in items])
    labels = torch.tensor([it["label"] for it in items])
    maps = torch.cat([attribmap.explain(model, images[i:i + 4], method="cam", target=labels[i:i + 4], raw=True)
                      for i in range(0, len(items), 4)])
    assert sorted(per_class) == sorted(str(c) for c in labels.unique().tolist())
    for label in labels.unique().tolist():
        rows = [i for i in range(len(items)) if int(labels[i]) == label]
        reference = evaluate_maps(maps[rows], boxes=[items[i]["boxes"].numpy() for i in rows],
                                  image_sizes=np.array([items[i]["size"] for i in rows]),
                                  masks=[items[i]["mask"].numpy() for i in rows],
                                  ignore=[items[i]["ignore"].numpy() for i in rows], delta=0.01)
        for key in ("MaxBoxAcc", "MaxBoxAccV2", "PxAP"):
            assert per_class[str(label)][key] == pytest.approx(reference[key], abs=1e-9), (label, key)


def test_reference_rows_suite_check_and_blank_entropy_are_reported(trained, tmp_path):
    from attribmap.data.synthetic import score_reference_rows

    out = tmp_path / "suite_report"
    results = run_benchmark(_config(trained, methods=("cam",)), out, write_figures=False)
    section = results["suite_check"]
    assert list(section["rows"]) == ["object", "parts", "body", "centre", "pooled"]
    assert section["grid"] == 2  # resnet18_narrow at 32 px: layer4 is 2 x 2
    expected = score_reference_rows(trained["suite"], "test", grid=2, delta=0.01)
    for name, row in section["rows"].items():
        assert row["MaxBoxAccV2"] == pytest.approx(expected[name]["MaxBoxAccV2"]), name
    assert isinstance(section["check"]["passed"], bool) and section["check"]["cam_ok"] is not None
    assert any("CAM" in line for line in section["lines"])
    blank = results["blank"]["main"]
    assert blank["classes"] == 2 and 0.0 <= blank["entropy"] <= 1.0 and 0.5 <= blank["max_p"] <= 1.0
    text = (out / "results.md").read_text()
    assert "Reference rows from the ground truth" in text and "blank (mean-grey) image" in text
    assert "Layer tapped per extractor (the automatic choice resolved): cam: layer4" in text
