"""Score many map extractors on one WSOL dataset with one protocol (``attribmap bench``).

>>> from attribmap.bench import BenchConfig, run_benchmark
>>> config = BenchConfig(data="suite", checkpoint="runs/cls.pt", methods=("cam", "gradcam", "dgl"),
...                      i2c="runs/i2c.pt", weightmap="runs/wm.pt", input_size=64)   # doctest: +SKIP
>>> results = run_benchmark(config, "bench_out")                                     # doctest: +SKIP
>>> results["extractors"]["cam"]["MaxBoxAccV2"]                                      # doctest: +SKIP

* :class:`BenchConfig` - data, model, extractors, protocol (hashed for ``resume``);
* :func:`run_benchmark` - the single pass (sharded under ``torchrun``, resumable) that
  writes ``results.json``, ``results.md``, ``curves.npz`` and the figures;
* :mod:`attribmap.bench.report` - the results table, the report files and figures.

bench only scores: the pipelines that train models and then score them (the demo, the
multi-seed summary, the evidence, the published recipe, the synthetic suite's check) are
:mod:`attribmap.experiments`.
"""
from __future__ import annotations

from attribmap.bench.config import DEFAULT_METHODS, PROTOCOLS, BenchConfig, parse_methods
from attribmap.bench.dataset import batch_plan
from attribmap.data.formats import detect_format, open_dataset
from attribmap.bench.extractors import ExtractorSuite, build_suite
from attribmap.bench.resume import ProgressMismatch
from attribmap.bench.runner import BenchInterrupted, run_benchmark, software_versions

__all__ = ["BenchConfig", "run_benchmark", "BenchInterrupted", "ProgressMismatch", "ExtractorSuite",
           "build_suite", "open_dataset", "detect_format", "batch_plan", "parse_methods", "DEFAULT_METHODS",
           "PROTOCOLS", "software_versions"]
