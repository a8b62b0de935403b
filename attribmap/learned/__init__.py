"""Training-time parts of the learned extractors: I2C losses and sampler, weight-map losses.

* :class:`I2CLoss`, :class:`PairedClassBatchSampler` (I2C, Zhang et al. ECCV 2020);
* :mod:`attribmap.learned.weightmap`: :func:`method1_loss`, :func:`method2_loss`,
  :func:`triplet_loss`, :func:`stopping_score`, :func:`robust_stopping_score`,
  :func:`stopping_diagnostics` (Shaharabany & Wolf);
* :class:`WeightMapExtractor`: a trained generator as an ``explain`` method.
"""
from __future__ import annotations

from attribmap.learned.extractor import WeightMapExtractor
from attribmap.learned.i2c import I2CLoss, seed_scores, select_seeds
from attribmap.learned.sampler import PairedClassBatchSampler
from attribmap.learned.weightmap import (method1_loss, method2_loss, robust_stopping_score,
                                        stopping_diagnostics, stopping_score, triplet_loss)

__all__ = ["I2CLoss", "PairedClassBatchSampler", "WeightMapExtractor", "method1_loss",
           "method2_loss", "triplet_loss", "stopping_score", "robust_stopping_score",
           "stopping_diagnostics", "seed_scores", "select_seeds"]
