"""Settings of the seed-method evidence run: its rows, backbones, budgets and presets.

:mod:`attribmap.experiments.evidence` runs the stages; :mod:`attribmap.experiments.evidence_summary`
turns their records into the report. Both read the tables here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["METRICS", "ROWS", "REFERENCE", "Backbone", "BACKBONES", "LITE0_I2C_CE", "backbone_spec", "evidence_rows",
           "EvidenceSettings", "PRESETS", "evidence_settings", "scale_epochs"]

#: Metrics copied from each benchmark (official protocol, GT-known maps).
METRICS = ("MaxBoxAccV2", "PxAP", "MaxBoxAcc", "Top1Loc")

#: Table rows: (label in the benchmark results, what it is, the paper's claim vs CAM).
ROWS: Tuple[Tuple[str, str, str], ...] = (
    ("cam", "CAM of the CE classifier (layer4)", "baseline"),
    ("gradcam", "Grad-CAM, layer4", ""),
    ("gradcampp", "Grad-CAM++, layer4", ""),
    ("dgl", "DGL fused, layer4 (equals CAM up to scale on a GAP -> linear head)", ""),
    ("dgl@layer3", "DGL fused, layer3", "DGL: > CAM"),
    ("dgl-psb@layer3", "DGL pixel-level selection branch, layer3", ""),
    ("dgl-cem@layer3", "DGL class-aware enhanced map branch, layer3", ""),
    ("dgl@layer3+MS", "DGL fused, layer3, multi-scale", "DGL: > CAM"),
    ("dgl@layer3+MS+MC", "DGL fused, layer3, multi-scale + closing", "DGL: > CAM"),
    ("i2c", "I2C class maps, SC + GC fine-tune of the CE model", "I2C: > CAM and > ablation"),
    ("i2c-ablation", "I2C architecture, the same fine-tune with CE only", ""),
    ("i2c-ce", "I2C architecture after the CE stage (before fine-tuning)", ""),
    ("weightmap-I", "weight map, method I (classifier), stopping-score selected", "weight map: > CAM"),
    ("weightmap-II", "weight map, method II (Siamese), stopping-score selected", "weight map: > CAM"),
)
#: Reference rows from ground truth (attribmap.data.synthetic.reference).
REFERENCE = ("object", "parts", "body", "centre", "pooled")


@dataclass(frozen=True)
class Backbone:
    """The networks of one evidence backbone.

    Attributes
    ----------
    classifier, i2c, weightmap, embedding : str
        Arch names of the CE classifier, the I2C classifier, the generator and the Siamese
        embedding.
    cam_layer, intermediate : str
        The classifier's CAM layer and DGL's intermediate layer (the ``layer3`` rows).
    weights : str, optional
        None: every model starts from a classifier trained on the suite's ``pretrain`` split
        (the ``pretrain`` stage); ``"DEFAULT"``: from the ImageNet weights (no pretrain stage).
    i2c_ce_options : mapping
        Recipe options of the I2C CE stage beyond the shared ones (its learning rate is 0.01
        unless given here); they enter that stage's cache key. Not ``epochs``: those are the
        budget's ``i2c_ce_epochs``, which ``scale_epochs`` scales.
    """

    classifier: str
    i2c: str
    weightmap: str
    embedding: str
    cam_layer: str
    intermediate: str
    weights: Optional[str] = None
    i2c_ce_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if "epochs" in self.i2c_ce_options:
            raise ValueError(f"Backbone {self.classifier!r}: i2c_ce_options may not fix 'epochs' "
                             f"(got {self.i2c_ce_options['epochs']!r}); set the budget's i2c_ce_epochs")


#: Recipe options of the Lite0 I2C CE stage (see docs/learned.rst, "I2C on the ImageNet backbone").
LITE0_I2C_CE: Dict[str, Any] = {"optimizer": "adam", "lr": 1e-4, "head_lr_mult": 10.0}

#: Backbone name -> its networks (``benchmarks/learned_vs_cam.py --backbone``).
BACKBONES: Dict[str, Backbone] = {
    "resnet18_narrow": Backbone("resnet18_narrow", "resnet18_narrow_i2c", "weightmap_resnet18_narrow",
                                "siamese_resnet18_narrow", "layer4", "layer3"),
    "efficientnet_lite0": Backbone("efficientnet_lite0_wsol", "efficientnet_lite0_i2c",
                                   "weightmap_efficientnet_lite0", "siamese_efficientnet_lite0", "_head_act",
                                   "_blocks.10", weights="DEFAULT",
                                   i2c_ce_options=LITE0_I2C_CE),
}


def evidence_rows(backbone: str = "resnet18_narrow") -> Tuple[Tuple[str, str, str], ...]:
    """:data:`ROWS` with the layer names of ``backbone`` (``layer3`` -> its intermediate layer,
    ``layer4`` -> its CAM layer)."""
    spec = backbone_spec(backbone)
    return tuple((label.replace("layer3", spec.intermediate),
                  text.replace("layer3", spec.intermediate).replace("layer4", spec.cam_layer), claim)
                 for label, text, claim in ROWS)


def backbone_spec(name: str) -> Backbone:
    """The :class:`Backbone` named ``name`` (a key of :data:`BACKBONES`; ValueError listing them otherwise)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown evidence backbone {name!r}: expected one of {sorted(BACKBONES)}")
    return BACKBONES[name]


@dataclass(frozen=True)
class EvidenceSettings:
    """Suite size and training budgets shared by every seed.

    Attributes
    ----------
    classes, per_class, pretrain_per_class, test_per_class, scene_size
        The version-2 suite (images per class of each split, nominal side).
    image_size : int
        Training crop and benchmark input side (128: an 8 x 8 CAM layer).
    batch_size : int
        Even (I2C pairs).
    pretrain_epochs, classifier_epochs, i2c_ce_epochs, finetune_epochs, weightmap_epochs,
    embedding_epochs : int
        Budgets of the stages.
    evaluations_per_epoch : int
        Label-free stopping evaluations of the weight-map generators per epoch.
    ms_scales : tuple of float
        Input scales of DGL's multi-scale test (MS).
    close : int
        Disk radius (input pixels) of DGL's morphological closing (MC).
    delta, curve_delta : float
        Threshold step of the final table and of the per-evaluation weight-map scores.
    backbone : str
        A key of :data:`BACKBONES`; with ImageNet weights the ``pretrain_*`` fields are unused
        (keep ``pretrain_per_class`` 0: no pretrain split is generated).
    """

    classes: int = 8
    per_class: int = 80
    pretrain_per_class: int = 80
    test_per_class: int = 25
    scene_size: int = 128
    image_size: int = 128
    batch_size: int = 16
    pretrain_epochs: int = 10
    classifier_epochs: int = 6
    i2c_ce_epochs: int = 6
    finetune_epochs: int = 4
    weightmap_epochs: int = 6
    embedding_epochs: int = 6
    evaluations_per_epoch: int = 2
    ms_scales: Tuple[float, ...] = (0.75, 1.0, 1.25)
    close: int = 4
    delta: float = 0.001
    curve_delta: float = 0.01
    backbone: str = "resnet18_narrow"

    def __post_init__(self) -> None:
        backbone_spec(self.backbone)

    def key(self, seed: int, *fields: str) -> str:
        """Short hash of the named ``*fields`` (all when none) and the ``seed``.

        ``backbone`` enters only when it is not the default, so the records of runs written
        before the field existed stay current.
        """
        values = dataclasses.asdict(self)
        if values["backbone"] == "resnet18_narrow":
            del values["backbone"]
        chosen = {name: values[name] for name in (fields or sorted(values))}
        text = json.dumps({**chosen, "seed": seed}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


PRESETS: Dict[str, EvidenceSettings] = {
    "full": EvidenceSettings(),
    "small": EvidenceSettings(classes=2, per_class=6, pretrain_per_class=6, test_per_class=3, scene_size=64,
                              image_size=64, batch_size=4, pretrain_epochs=1, classifier_epochs=1, i2c_ce_epochs=1,
                              finetune_epochs=1, weightmap_epochs=1, embedding_epochs=1, evaluations_per_epoch=2,
                              close=2, delta=0.01, curve_delta=0.05),
}

#: Budgets of the efficientnet_lite0 backbone (``--backbone efficientnet_lite0``), per preset:
#: ImageNet weights, no pretrain split. ``full``: 60 training images per class (80 for the
#: narrow ResNet), the same 25 test images, about half the epochs, so that one seed takes at
#: most about 45 minutes on the project's loaded 2-core machine (docs/learned.rst gives the
#: step times this rests on). The I2C CE stage's 10 epochs: Adam needed them to train the
#: new head (:data:`LITE0_I2C_CE`); as a budget field, ``scale_epochs`` scales them too.
_LITE0_PRESETS: Dict[str, Dict[str, Any]] = {
    "full": dict(per_class=60, pretrain_per_class=0, pretrain_epochs=0, classifier_epochs=3, i2c_ce_epochs=10,
                 finetune_epochs=2, weightmap_epochs=2, embedding_epochs=2, evaluations_per_epoch=2),
    "small": dict(pretrain_per_class=0, pretrain_epochs=0),
}


def evidence_settings(preset: str = "full", backbone: str = "resnet18_narrow") -> EvidenceSettings:
    """The settings of ``preset`` (a key of :data:`PRESETS`) for ``backbone`` (a key of :data:`BACKBONES`).

    ``resnet18_narrow`` gets :data:`PRESETS` unchanged; ``efficientnet_lite0`` its own budgets
    (no pretrain split or stage).

    Raises
    ------
    ValueError
        Unknown preset or backbone (the message lists the choices).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown evidence preset {preset!r}: expected one of {sorted(PRESETS)}")
    backbone_spec(backbone)
    if backbone == "resnet18_narrow":
        return PRESETS[preset]
    return dataclasses.replace(PRESETS[preset], backbone=backbone, **_LITE0_PRESETS[preset])


def scale_epochs(settings: EvidenceSettings, factor: int) -> EvidenceSettings:
    """``settings`` with every stage's epochs (``*_epochs``) multiplied by ``factor`` (an int >= 1).

    Raises
    ------
    ValueError
        ``factor`` is not an integer >= 1.
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"epoch factor must be an integer >= 1, got {factor!r}")
    fields = {f.name: getattr(settings, f.name) * factor for f in dataclasses.fields(settings)
              if f.name.endswith("_epochs")}
    return dataclasses.replace(settings, **fields)
