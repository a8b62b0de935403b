"""Experiments: pipelines that train models and then score them with :mod:`attribmap.bench`.

* :mod:`attribmap.experiments.demo` - the end-to-end demo on the synthetic suite
  (``attribmap demo``);
* :mod:`attribmap.experiments.demo_real` - the demo's real-network part: efficientnet_lite0
  on mosaics of the bundled photos, and a figure of maps on them;
* :mod:`attribmap.experiments.demo_seeds` - the demo over several seeds, mean +- std
  (``benchmarks/wsol_suite.py``);
* :mod:`attribmap.experiments.evidence` - learned extractors against CAM, with paired
  statistics (``benchmarks/learned_vs_cam.py``; its rows, backbones and budgets in
  :mod:`~attribmap.experiments.evidence_settings`, its report in
  :mod:`~attribmap.experiments.evidence_summary`);
* :mod:`attribmap.experiments.published` - the published CAM recipe and figures
  (``benchmarks/reproduce_paper.py``);
* :mod:`attribmap.experiments.synthetic_check` - the synthetic suite's end-to-end check
  (``benchmarks/synthetic_suite_check.py``).

Each stage's output is cached and reused when its settings match. These modules import
:mod:`attribmap.train` and :mod:`attribmap.bench`; neither imports them.
"""
from __future__ import annotations
