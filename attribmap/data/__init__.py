"""WSOL datasets: wsolevaluation metadata, CUB-200-2011 as distributed, the synthetic suite.

Every reader parses and checks its files when it is opened and raises :class:`MetadataError`
(a :class:`ValueError`) naming the file, line and value at fault. Items are dicts with
``image``, ``label``, ``boxes`` (inclusive, original pixels), ``size`` (W, H), ``id`` and,
for datasets with masks, ``mask`` / ``ignore``; batch them with :func:`collate_wsol`.
"""
from __future__ import annotations

from attribmap.data.cub import CUBDataset
from attribmap.data.errors import MetadataError
from attribmap.data.records import ImageRecord, RecordDataset, collate_wsol
from attribmap.data.transforms import legacy_transform, official_transform, train_transform
from attribmap.data.wsol_metadata import WSOLDataset
from attribmap.data import synthetic

__all__ = ["WSOLDataset", "CUBDataset", "MetadataError", "collate_wsol", "ImageRecord", "RecordDataset",
           "official_transform", "train_transform", "legacy_transform", "synthetic"]
