"""Training: one loop shared by the classifier, I2C and weight-map recipes.

* :func:`fit` - the loop (optimizer, schedule, progress bar, atomic checkpoints, bit-for-bit
  resume, DistributedDataParallel under torchrun);
* :func:`train_classifier`, :func:`train_i2c`, :func:`train_weightmap`,
  :func:`train_embedding` - the task recipes on a WSOL dataset folder;
* :func:`load_checkpoint`, :func:`load_model` - read what they wrote.
"""
from __future__ import annotations

from attribmap.train.checkpoint import (
    CheckpointError,
    last_checkpoint_path,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from attribmap.train.classifier import train_classifier
from attribmap.train.i2c import train_i2c
from attribmap.train.loop import FitResult, TrainingError, fit
from attribmap.train.optim import OptimConfig, head_parameter_groups
from attribmap.train.seeding import seed_everything
from attribmap.train.weightmap import embedding_checkpoint_path, train_embedding, train_weightmap

__all__ = [
    "fit",
    "FitResult",
    "TrainingError",
    "OptimConfig",
    "head_parameter_groups",
    "seed_everything",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "last_checkpoint_path",
    "CheckpointError",
    "train_classifier",
    "train_i2c",
    "train_weightmap",
    "train_embedding",
    "embedding_checkpoint_path",
]
