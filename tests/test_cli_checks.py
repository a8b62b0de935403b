"""Command-line checks before work and one-line errors: output paths, input size, broken images
mid-run (progress kept), labels, seeds, --resume without state."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from attribmap.bench import BenchConfig
from attribmap.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A suite of 2 classes (6 test images) and a classifier trained 1 epoch at 32 px."""
    from attribmap.data.synthetic import generate_suite
    from attribmap.train import train_classifier

    root = tmp_path_factory.mktemp("checks")
    generate_suite(root / "suite", classes=2, per_class=4, size=40, val_per_class=0, test_per_class=3)
    train_classifier(root / "suite", root / "cls.pt", epochs=1, batch_size=4, image_size=32, progress=False)
    return root


def _bench(trained, out, *extra):
    return main(["bench", "--data", str(trained / "suite"), "--checkpoint", str(trained / "cls.pt"), "--methods", "cam",
                 "--batch-size", "2", "--delta", "0.01", "--no-figures", "--no-progress", "--out", str(out), *extra])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("attribmap: error: "), err
    return err[0]


def test_bench_uses_the_image_size_the_checkpoint_records_and_says_so(trained, tmp_path, capsys):
    assert _bench(trained, tmp_path / "rec") == 0
    printed = capsys.readouterr()
    assert "input size: 32 px (recorded in the checkpoint's training recipe)" in printed.out
    assert "input size 32 px" in printed.err
    results = json.loads((tmp_path / "rec" / "results.json").read_text())
    assert results["input_size"] == {"pixels": 32, "from": "checkpoint"} and results["config"]["input_size"] == 32
    assert _bench(trained, tmp_path / "given", "--input-size", "48") == 0
    assert "input size: 48 px (given)" in capsys.readouterr().out
    config = BenchConfig(data=str(trained / "suite"), model="resnet18").validated()
    assert (config.input_size, config.input_size_from) == (224, "default")
    for arch, side in (("efficientnet_lite0", 224), ("efficientnet_lite2", 260)):  # the resolution of its weights
        config = BenchConfig(data=str(trained / "suite"), model=arch).validated()
        assert (config.input_size, config.input_size_from) == (side, "model")
    given = BenchConfig(data=str(trained / "suite"), checkpoint=str(trained / "cls.pt"), input_size=32).validated()
    assert given.input_size_from == "given" and given.fingerprint() == \
        BenchConfig(data=str(trained / "suite"), checkpoint=str(trained / "cls.pt")).validated().fingerprint()


def test_unreadable_image_mid_run_names_the_file_and_keeps_finished_batches(trained, tmp_path, capsys):
    assert _bench(trained, tmp_path / "whole") == 0
    capsys.readouterr()
    data = tmp_path / "suite"
    shutil.copytree(trained / "suite", data)
    ids = (data / "metadata" / "test" / "image_ids.txt").read_text().split()
    victim = data / ids[4]  # batch 2 of 3
    original = victim.read_bytes()
    victim.write_bytes(original[: len(original) // 2])  # the header survives: opening passes, decoding fails
    argv = ["bench", "--data", str(data), "--checkpoint", str(trained / "cls.pt"), "--methods", "cam",
            "--batch-size", "2", "--delta", "0.01", "--no-figures", "--no-progress", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("attribmap: error: cannot read image") and ids[4] in line and "truncated" in line
    assert "2 of 3 batches are saved" in line and "--resume" in line
    assert (tmp_path / "out" / ".progress.pt").is_file()

    assert main(argv[:-4] + ["--check-images", "--out", str(tmp_path / "checked")]) == 2
    err = capsys.readouterr().err
    assert "image_ids.txt:5: cannot read image" in err and "1 problem in split 'test'" in err
    assert not (tmp_path / "checked").exists()

    victim.write_bytes(original)
    assert main(argv + ["--resume"]) == 0
    assert "resuming at batch 2 of 3" in capsys.readouterr().err
    resumed = json.loads((tmp_path / "out" / "results.json").read_text())["extractors"]["cam"]
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())["extractors"]["cam"]
    assert resumed["MaxBoxAccV2"] == whole["MaxBoxAccV2"] and resumed["num_images"] == 6
    assert resumed["nonfinite_maps"] == 0


def test_output_paths_are_checked_before_any_work(trained, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _bench(trained, blocker) == 2
    assert "--out" in (line := _one_line(capsys)) and "is an existing file; expected a directory" in line
    assert _bench(trained, blocker / "sub") == 2
    assert f"{str(blocker)!r} is a file, not a folder" in _one_line(capsys)
    # explain: the output is checked before the (missing) image is read or any model is built
    assert main(["explain", str(tmp_path / "missing.png"), "--model", "resnet18", "-o",
                 str(blocker / "x.png")]) == 2
    assert "-o/--out" in (line := _one_line(capsys)) and "is a file, not a folder" in line
    assert main(["train", "classifier", "--data", str(trained / "suite"), "--out", str(blocker / "c.pt")]) == 2
    assert "is a file, not a folder" in _one_line(capsys)
    assert main(["synth", str(blocker), "--no-check"]) == 2
    assert "suite directory" in (line := _one_line(capsys)) and "is an existing file" in line


def test_dataset_label_beyond_the_model_classes_names_the_image(trained, tmp_path, capsys):
    data = tmp_path / "suite"
    shutil.copytree(trained / "suite", data)
    labels = data / "metadata" / "test" / "class_labels.txt"
    lines = labels.read_text().splitlines()
    image = lines[3].split(",")[0]
    lines[3] = f"{image},5"
    labels.write_text("\n".join(lines) + "\n")
    assert main(["bench", "--data", str(data), "--checkpoint", str(trained / "cls.pt"), "--methods", "cam",
                 "--no-progress", "--out", str(tmp_path / "o")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"class_labels.txt:4: image {image!r} has label 5, but the model has 2 classes" in line


@pytest.mark.parametrize("argv", [
    ["bench", "--data", "{suite}", "--checkpoint", "{cls}", "--out", "{out}", "--seed", "-1"],
    ["synth", "{out}", "--seed", "-1"],
    ["train", "classifier", "--data", "{suite}", "--out", "{out}/c.pt", "--seed", "-1"],
])
def test_negative_seed_gets_our_message_on_every_command(trained, tmp_path, capsys, argv):
    values = {"suite": str(trained / "suite"), "cls": str(trained / "cls.pt"), "out": str(tmp_path / "o")}
    assert main([a.format(**values) for a in argv]) == 2
    line = _one_line(capsys)
    assert "seed must be an int" in line and "-1" in line


def test_train_resume_without_last_file_says_it_starts_from_the_first_epoch(trained, tmp_path, capsys):
    from attribmap.train import train_classifier

    argv = ["train", "classifier", "--data", str(trained / "suite"), "--out", str(tmp_path / "c.pt"), "--epochs", "1",
            "--batch-size", "4", "--image-size", "32", "--resume", "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"resume: no resumable state at {tmp_path / 'c.last.pt'}" in err and "from the first epoch" in err
    with pytest.warns(RuntimeWarning, match="nothing to resume"):
        train_classifier(trained / "suite", tmp_path / "d.pt", epochs=1, batch_size=4, image_size=32,
                         progress=False, resume=True)
