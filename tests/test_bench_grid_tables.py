"""benchmarks/grid_pointing_sanity_tables.py: the grid pointing table from bench reports, with --keep."""
import importlib.util
import json
from pathlib import Path

import pytest


def _module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "grid_pointing_sanity_tables.py"
    spec = importlib.util.spec_from_file_location("grid_pointing_sanity_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(folder: Path, extractors: dict, reference: bool = True) -> str:
    folder.mkdir()
    results = {"extractors": {name: {"about": {"layer": "_head_act"}, "GridPointing": value, "PointingGame": 100.0,
                                     "EnergyPointing": 50.0, "MaxBoxAccV2": 70.0, "GridPointing_empty": 0}
                              for name, value in extractors.items()}}
    if reference:
        results["mosaic_reference"] = {"rows": {"uniform": {"GridPointing": 25.0, "PointingGame": 0.0,
                                                            "EnergyPointing": 0.0}}}
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return str(folder)


def _names(path: Path):
    return [row[0] for row in _module().read_table(str(path))]


def test_keep_adds_new_rows_replaces_repeated_ones_and_keeps_the_references_last(tmp_path):
    tables = _module()
    out = tmp_path / "docs"
    out.mkdir()
    tables.main(["--bench", _report(tmp_path / "a", {"cam": 83.2, "gradcam": 81.4}), "--out", str(out)])
    target = out / "_grid_pointing_table.rst"
    assert _names(target) == ["``cam``", "``gradcam``", "reference: uniform map"]

    tables.main(["--bench", _report(tmp_path / "b", {"scorecam": 60.0, "gradcam": 80.0}, reference=False),
                 "--keep", "--out", str(out)])
    rows = tables.read_table(str(target))
    assert [row[0] for row in rows] == ["``cam``", "``scorecam``", "``gradcam``", "reference: uniform map"]
    assert rows[0][2] == "83.2" and rows[1][2] == "60.0" and rows[2][2] == "80.0" and rows[3][2] == "25.0"

    # without --keep the table holds the given reports only
    tables.main(["--bench", str(tmp_path / "b"), "--out", str(out)])
    assert _names(target) == ["``scorecam``", "``gradcam``"]


def test_read_table_names_a_file_that_is_not_a_table(tmp_path):
    bad = tmp_path / "bad.rst"
    bad.write_text("just text\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.rst: expected simple reST tables of 3 rules"):
        _module().read_table(str(bad))


def _sanity(folder: Path, methods: dict) -> str:
    stages = ["original", "_fc", "_bn1", "_conv_head"]
    folder.mkdir()
    data = {"methods": {name: {"stages": stages, "spearman": [1.0, v, v, v], "spearman_abs": [1.0, v, v, v],
                               "ssim": [1.0, v, v, v], "hog": [1.0, v, v, v], "n_constant": [0, 0, 0, 0]}
                        for name, v in methods.items()},
            "independent": {name: {"stages": stages[1:], "spearman_abs": [v, v, v], "n_constant": [0, 0, 0]}
                            for name, v in methods.items()}}
    (folder / "sanity.json").write_text(json.dumps(data), encoding="utf-8")
    return str(folder)


def test_keep_merges_each_of_the_three_sanity_tables(tmp_path, capsys):
    tables = _module()
    out = tmp_path / "docs"
    out.mkdir()
    tables.main(["--sanity", _sanity(tmp_path / "a", {"cam": 0.3, "gradcam": 0.4}), "--out", str(out)])
    tables.main(["--sanity", _sanity(tmp_path / "b", {"refinecam": 0.5, "gradcam": 0.1}), "--keep", "--out", str(out)])
    merged = tables.read_tables(str(out / "_sanity_table.rst"))
    assert len(merged) == 3
    for rows in merged:
        assert [row[0] for row in rows] == ["``cam``", "``refinecam``", "``gradcam``"]
        assert rows[0][1 if rows is merged[2] else 2] == "0.30" and rows[2][-2 if rows is merged[2] else 2] == "0.10"
    # a run without the independent randomization keeps the earlier independent table as it was
    cascading_only = tmp_path / "d"
    cascading_only.mkdir()
    data = json.loads((tmp_path / "b" / "sanity.json").read_text())
    data["methods"] = {"scorecam": data["methods"]["refinecam"]}
    del data["independent"]
    (cascading_only / "sanity.json").write_text(json.dumps(data), encoding="utf-8")
    tables.main(["--sanity", str(cascading_only), "--keep", "--out", str(out)])
    merged = tables.read_tables(str(out / "_sanity_table.rst"))
    assert [row[0] for row in merged[0]] == ["``cam``", "``refinecam``", "``gradcam``", "``scorecam``"]
    assert [row[0] for row in merged[2]] == ["``cam``", "``refinecam``", "``gradcam``"]
    # a kept table of other stages is refused, not misaligned
    short = tmp_path / "c"
    short.mkdir()
    data = json.loads((tmp_path / "a" / "sanity.json").read_text())
    for entry in data["methods"].values():
        for key in ("stages", "spearman", "spearman_abs", "ssim", "hog", "n_constant"):
            entry[key] = entry[key][:3]
    del data["independent"]
    (short / "sanity.json").write_text(json.dumps(data), encoding="utf-8")
    before = (out / "_sanity_table.rst").read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        tables.main(["--sanity", str(short), "--keep", "--out", str(out)])
    assert "cannot be kept" in capsys.readouterr().err
    assert (out / "_sanity_table.rst").read_text(encoding="utf-8") == before  # left as it was


def test_a_missing_report_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _module().main(["--bench", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere" in err and "Traceback" not in err


def test_a_run_on_named_stages_fills_its_columns_by_name(tmp_path):
    tables = _module()
    out = tmp_path / "docs"
    out.mkdir()
    blocks = ["_conv_stem", "_blocks.0", "_conv_head", "_fc"]  # input to logits
    full = ["original", "_fc", "_conv_head", "_blocks.0", "_conv_stem"]

    def write(folder, name, stages, value):
        folder.mkdir()
        n = len(stages)
        entry = {"stages": stages, "spearman": [value] * n, "spearman_abs": [value] * n, "ssim": [value] * n,
                 "hog": [value] * n, "n_constant": [0] * n}
        alone = {"stages": stages[1:], "spearman_abs": [value + i / 100 for i in range(n - 1)], "n_constant": [0] * (n - 1)}
        data = {"blocks": blocks, "stages": stages, "methods": {name: entry}, "independent": {name: alone}}
        (folder / "sanity.json").write_text(json.dumps(data), encoding="utf-8")
        return str(folder)

    tables.main(["--sanity", write(tmp_path / "a", "gradcam", full, 0.5), "--out", str(out)])
    tables.main(["--sanity", write(tmp_path / "b", "iscam", ["original", "_fc", "_blocks.0"], 0.25), "--keep",
                 "--out", str(out)])
    cascading, last, independent = tables.read_tables(str(out / "_sanity_table.rst"))
    assert cascading[0] == ["``gradcam``", "0.50", "0.50", "0.50", "0.50", "0.50"]
    assert cascading[1] == ["``iscam``", "0.25", "0.25", "·", "0.25", "·"]
    assert last[1][:5] == ["``iscam``", "·", "·", "·", "·"]  # every block randomized: not computed
    assert independent[0][-1] == "0.50 (_fc)"
    assert independent[1] == ["``iscam``", "0.25", "·", "0.26", "·", "0.25 (_fc; of 2 blocks run)"]


def _run(folder: Path, stages, value: float, seed: int = 0) -> str:
    """A sanity.json of one method, ``gradcam``, computed at ``stages`` (cascading) and ``stages[1:]`` (independent)."""
    folder.mkdir()
    n = len(stages)
    entry = {"stages": stages, "spearman": [value] * n, "spearman_abs": [value] * n, "ssim": [value] * n,
             "hog": [value] * n, "n_constant": [0] * n, "n_images": 2}
    alone = {"stages": stages[1:], "spearman_abs": [value] * (n - 1), "n_constant": [0] * (n - 1), "n_images": 2}
    data = {"model": "m", "blocks": ["_conv_stem", "_blocks.0", "_conv_head", "_fc"], "seed": seed,
            "images": ["coffee"], "targets": [967], "stages": stages,
            "methods": {"gradcam": entry}, "independent": {"gradcam": alone}}
    (folder / "sanity.json").write_text(json.dumps(data), encoding="utf-8")
    return str(folder)


def test_runs_at_other_stages_merge_into_one_row_in_the_models_order(tmp_path):
    tables = _module()
    first = _run(tmp_path / "a", ["original", "_fc", "_conv_stem"], 0.5)
    later = _run(tmp_path / "b", ["original", "_blocks.0", "_fc"], 0.25)  # _fc again: the first run's numbers stay
    merged = tables.read_sanity([first, later])
    entry = merged["methods"]["gradcam"]
    assert entry["stages"] == ["original", "_fc", "_blocks.0", "_conv_stem"]
    assert entry["spearman_abs"] == [0.5, 0.5, 0.25, 0.5] and entry["n_images"] == 2
    alone = merged["independent"]["gradcam"]
    assert alone["stages"] == ["_fc", "_blocks.0", "_conv_stem"] and alone["spearman_abs"] == [0.5, 0.25, 0.5]
    assert merged["stages"] == entry["stages"]

    out = tmp_path / "docs"
    out.mkdir()
    tables.main(["--sanity", first, later, "--out", str(out)])
    cascading, _, independent = tables.read_tables(str(out / "_sanity_table.rst"))
    assert cascading[0] == ["``gradcam``", "0.50", "0.50", "·", "0.25", "0.50"]
    assert independent[0][-1] == "0.25 (_blocks.0; of 3 blocks run)"


def test_runs_of_another_seed_are_not_merged(tmp_path, capsys):
    tables = _module()
    first = _run(tmp_path / "a", ["original", "_fc"], 0.5)
    other = _run(tmp_path / "b", ["original", "_blocks.0"], 0.25, seed=1)
    with pytest.raises(ValueError, match=r"seed 1 differs from .*'s 0"):
        tables.read_sanity([first, other])
    with pytest.raises(SystemExit):
        tables.main(["--sanity", first, other, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "seed" in err and not (tmp_path / "_sanity_table.rst").exists()


def test_a_broken_sanity_report_is_named(tmp_path, capsys):
    broken = tmp_path / "run"
    broken.mkdir()
    (broken / "sanity.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SystemExit):
        _module().main(["--sanity", str(broken), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(broken / "sanity.json") in err and "is not a sanity report" in err
