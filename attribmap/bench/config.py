"""What a benchmark run scores, and with which protocol: :class:`BenchConfig`.

The configuration is plain data (strings, numbers, tuples) so that it can be written into
``results.json`` and hashed: a resumed run must have the same :meth:`BenchConfig.fingerprint`
as the run it continues.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from attribmap.errors import AttribmapError
from attribmap.evaluate.functional import PROTOCOLS
from attribmap.evaluate import registry
from attribmap.evaluate.registry import metric_factory, metric_info, parse_metric_option
from attribmap.methods import POSTHOC_METHODS
from attribmap.methods.spec import ExtractorSpec, split_specs
from attribmap.models.input_size import resolve_input_size

__all__ = ["BenchConfig", "PROTOCOLS", "DEFAULT_METHODS", "FAITHFULNESS", "parse_methods", "parse_faithfulness",
           "parse_metric_options", "check_seed", "SEED_LIMIT"]


def __getattr__(name: str):
    # the metrics --faithfulness can ask for: the registry's faithfulness family, read when asked for
    if name == "FAITHFULNESS":
        return registry.FAITHFULNESS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: Seeds run from 0 to this (exclusive): what numpy's legacy seeding takes.
SEED_LIMIT = 2 ** 32


def check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` when it is an int in [0, 2**32); else an :class:`AttribmapError` saying so.

    Parameters
    ----------
    seed : object
        The value to check.
    what : str
        Its name in the message (``"--seed"``).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not (0 <= seed < SEED_LIMIT):
        raise AttribmapError(f"{what} must be an integer from 0 to {SEED_LIMIT - 1}; got {seed!r}")
    return seed


#: The post-hoc methods scored when no list is given (they share one forward pass).
DEFAULT_METHODS = POSTHOC_METHODS


def parse_faithfulness(text: str) -> Tuple[str, ...]:
    """``"deletion, insertion"`` -> ``("deletion", "insertion")``; ``"all"`` -> every one; ``""`` -> none.

    Parameters
    ----------
    text : str
        Comma-separated faithfulness metric names (``--faithfulness``).
    """
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    known = registry.FAITHFULNESS
    if items == ["all"]:
        return known
    unknown = [t for t in items if t not in known]
    if unknown:
        raise AttribmapError(f"unknown faithfulness metric {unknown[0]!r}; expected some of "
                             f"{', '.join(known)} (or all)")
    return tuple(dict.fromkeys(items))


def parse_metric_options(texts: Iterable[str]) -> Tuple[Tuple[str, Any], ...]:
    """``["deletion.steps=20", "road.percents=30,70"]`` -> ``(("deletion.steps", 20), ("road.percents", (30, 70)))``.

    Each value is read as the kind its metric's constructor declares
    (:func:`attribmap.evaluate.registry.parse_metric_option`); a later text for the same key
    wins. Unknown metrics or keys and unreadable values raise a one-line
    :class:`AttribmapError`.

    Parameters
    ----------
    texts : iterable of str
        ``NAME.KEY=VALUE`` items (``--metric-option``).
    """
    parsed: Dict[str, Any] = {}
    for text in texts:
        key, value = parse_metric_option(text)
        parsed[key] = value
    return tuple(parsed.items())


def parse_methods(text: str) -> Tuple[str, ...]:
    """``"cam, gradcam,dgl@layer3"`` -> ``("cam", "gradcam", "dgl@layer3")``.

    Empty items and repeats of the comma-separated ``text`` are dropped, order is kept;
    commas inside parentheses (``scales=(1, 0.5)``) do not split
    (:func:`attribmap.methods.split_specs`).
    """
    return tuple(split_specs(text))


def _file_signature(path: Optional[str]) -> Optional[Dict[str, Any]]:
    """Absolute path, size and modification time of a file (None for None)."""
    if path is None:
        return None
    absolute = os.path.abspath(os.fspath(path))
    try:
        info = os.stat(absolute)
    except OSError:
        return {"path": absolute}
    return {"path": absolute, "size": int(info.st_size), "mtime_ns": int(info.st_mtime_ns)}


@dataclass(frozen=True)
class BenchConfig:
    """Everything that decides the numbers of a benchmark run.

    Parameters
    ----------
    data : str
        Dataset directory: wsolevaluation layout (``metadata/<split>/``), CUB-200-2011 as
        distributed (``images.txt`` + ``bounding_boxes.txt``), or a synthetic suite.
    split : str
        Split to score (``"test"`` by default).
    model : str, optional
        torchvision model name (with ``weights``); exclusive with ``checkpoint``.
    weights : str, optional
        Local ``state_dict`` path or a torchvision weights name for ``model``.
    checkpoint : str, optional
        Classifier checkpoint written by ``attribmap train``.
    layer : str, optional
        Layer tapped by the post-hoc methods (None = the model's automatic choice).
    methods : tuple of str
        Extractor specs ``NAME[@LAYER][=CHECKPOINT][:KEY=VALUE...]`` (see
        :mod:`attribmap.methods.spec`): post-hoc names (``cam``, ``dgl@layer3``, ...),
        ``captum:<Name>`` entries, ``i2c`` (the main model's class maps when it is an I2C
        model).
    extractors : tuple of str
        More specs, scored after ``methods`` (``i2c=runs/i2c.pt``, ``weightmap=runs/wm.pt``).
    i2c : str, optional
        Alias: the spec ``i2c=<this checkpoint>`` (an I2C classifier's class maps).
    weightmap : str, optional
        Alias: the spec ``weightmap=<this checkpoint>`` (a weight-map generator).
    protocol : {"official", "legacy"}
        Official wsolevaluation protocol (MaxBoxAcc, V2, PxAP) or the legacy fixed-threshold one.
    delta : float
        Threshold step of the official protocol (0.001, or 0.01 for quick runs).
    tau : float
        Fixed threshold of the legacy protocol.
    input_size : int, optional
        Side of the images fed to the model (the evaluation frame stays ``frame_size``).
        None (default): the ``image_size`` recorded in ``checkpoint``'s training recipe (the
        size the classifier was trained and evaluated at), else the resolution of ``model``'s
        weights when attribmap knows it (``efficientnet_lite1``: 240), else
        :data:`attribmap.inputs.DEFAULT_SIZE` (224); :meth:`validated` fills it in.
    input_size_from : str, optional
        Where ``input_size`` came from: ``"given"``, ``"checkpoint"`` (its recipe), ``"model"``
        or ``"default"``; set by :meth:`validated` (not part of the fingerprint).
    frame_size : int
        Side of the evaluation frame (224 in the protocol).
    batch_size : int
        Images per batch (per process when sharded).
    device : str
        ``cpu``, ``cuda`` or ``cuda:<i>``.
    metadata : str, optional
        wsolevaluation metadata directory when it is not ``data/metadata``.
    seed : int
        Seed of torch / numpy before the run (only stochastic extractors depend on it),
        0 <= seed < 2**32.
    pointing_tolerance : float
        Pointing-game tolerance in frame pixels.
    iou_thresholds : tuple of int
        IoU thresholds (percent) of MaxBoxAccV2.
    metrics : tuple of str, optional
        Exactly the metrics to score (registered names, ``--metrics``); None (default): the
        protocol's default metrics for what the split provides
        (:func:`attribmap.evaluate.default_metrics`).
    metric_settings : tuple of (str, object)
        Metric options ``("<metric>.<key>", value)`` (``--metric-option``); they win over the
        named fields below, which stay as aliases (``steps`` is ``deletion.steps`` and
        ``insertion.steps``, ...).
    faithfulness : tuple of str
        Faithfulness metrics to add (some of the ``"faithfulness"`` family: ``deletion``,
        ``insertion``, ``drop``, ``road``); empty by default because they cost perturbed
        forward passes.
    faithfulness_batch_size : int, optional
        Most perturbed images per forward pass (bounds their memory); by default 16 on the
        CPU and 64 on CUDA (:func:`attribmap.evaluate.perturbation.default_batch_size`).
    steps : int
        Steps of the deletion and insertion curves.
    deletion_baseline, insertion_baseline : {"zeros", "blur"}
        What deleted pixels become; what insertion starts from.
    road_percents : tuple of int
        Percentages of pixels ROAD removes.
    road_noise : float
        Standard deviation of ROAD's imputation noise (seeded with ``seed`` and each
        image's index).
    per_class : bool
        Also score MaxBoxAcc, MaxBoxAccV2 and PxAP of each class separately
        (``results["extractors"][name]["per_class"][label]``).
    """

    data: str
    split: str = "test"
    model: Optional[str] = None
    weights: Optional[str] = None
    checkpoint: Optional[str] = None
    layer: Optional[str] = None
    methods: Tuple[str, ...] = DEFAULT_METHODS
    extractors: Tuple[str, ...] = ()
    i2c: Optional[str] = None
    weightmap: Optional[str] = None
    protocol: str = "official"
    delta: float = 0.001
    tau: float = 0.2
    input_size: Optional[int] = None
    input_size_from: Optional[str] = None
    frame_size: int = 224
    batch_size: int = 32
    device: str = "cpu"
    metadata: Optional[str] = None
    seed: int = 0
    pointing_tolerance: float = 15.0
    iou_thresholds: Tuple[int, ...] = field(default=(30, 50, 70))
    metrics: Optional[Tuple[str, ...]] = None
    metric_settings: Tuple[Tuple[str, Any], ...] = ()
    faithfulness: Tuple[str, ...] = ()
    faithfulness_batch_size: Optional[int] = None
    steps: int = 50
    deletion_baseline: str = "zeros"
    insertion_baseline: str = "blur"
    road_percents: Tuple[int, ...] = field(default=(10, 20, 30, 40, 50, 60, 70, 80, 90))
    road_noise: float = 0.01
    per_class: bool = False

    def validated(self) -> "BenchConfig":
        """Return the checked configuration; raises :class:`AttribmapError`.

        ``self`` when ``input_size`` is set; otherwise a copy with the resolved
        ``input_size`` and ``input_size_from``.
        """
        if self.input_size is None or self.input_size_from is None:
            if self.checkpoint is not None and not os.path.isfile(self.checkpoint):
                raise FileNotFoundError(f"checkpoint not found: {self.checkpoint!r}")
            size, source = resolve_input_size(self.input_size, self.checkpoint, self.model)
            return dataclasses.replace(self, input_size=size, input_size_from=source).validated()
        check_seed(self.seed)
        if self.protocol not in PROTOCOLS:
            raise AttribmapError(f"protocol must be one of {PROTOCOLS}; got {self.protocol!r}")
        if (self.model is None) == (self.checkpoint is None):
            raise AttribmapError("give exactly one of model= (a torchvision name) and checkpoint= "
                                 f"(an attribmap checkpoint); got model={self.model!r}, "
                                 f"checkpoint={self.checkpoint!r}")
        if not (0.0 < float(self.delta) < 1.0):
            raise AttribmapError(f"delta must be in (0, 1), e.g. 0.001; got {self.delta!r}")
        if not (0.0 <= float(self.tau) < 1.0):
            raise AttribmapError(f"tau must be in [0, 1); got {self.tau!r}")
        self._validate_metrics()
        self._validate_faithfulness()
        for name in ("batch_size", "input_size", "frame_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AttribmapError(f"{name} must be a positive int; got {value!r}")
        if self.input_size < 16:
            raise AttribmapError(f"input_size must be at least 16 pixels; got {self.input_size}")
        specs = self.extractor_specs()
        if not specs:
            raise AttribmapError("no extractor to score: give methods, extractors (NAME=CHECKPOINT), an i2c "
                                 "checkpoint or a weightmap checkpoint")
        from attribmap.methods import lookup

        labels = set()
        for spec in specs:
            entry = lookup(spec.name)  # unknown names fail here, before any work
            if spec.checkpoint is None and entry.extractor is None:
                raise AttribmapError(f"{spec.name!r} is scored from its checkpoint: give {spec.name}=CKPT "
                                     f"(--extractor {spec.name}=CKPT or --{spec.name} CKPT) instead of the bare name")
            if spec.label in labels:
                raise AttribmapError(f"extractor {spec.label!r} is listed twice (drop one, or give the "
                                     "second another layer or options)")
            labels.add(spec.label)
        if not os.path.isdir(self.data):
            raise FileNotFoundError(f"dataset directory not found: {self.data!r}")
        if self.checkpoint is not None and not os.path.isfile(self.checkpoint):
            raise FileNotFoundError(f"checkpoint not found: {self.checkpoint!r}")
        for spec in specs:
            if spec.checkpoint is not None and not os.path.isfile(spec.checkpoint):
                raise FileNotFoundError(f"{spec.name} checkpoint not found: {spec.checkpoint!r}")
        return self

    def _validate_metrics(self) -> None:
        if self.metrics is not None:
            if isinstance(self.metrics, str) or not self.metrics:
                raise AttribmapError(f"metrics must be a non-empty tuple of metric names; got {self.metrics!r}")
            for name in self.metrics:
                metric_factory(name)  # unknown -> the known names
        for key, value in self.metric_settings:
            metric, dot, option = str(key).partition(".")
            if not dot:
                raise AttribmapError(f"metric option {key!r}: expected <metric>.<key>, e.g. deletion.steps")
            metric_info(metric).option(option).parse(value, key)

    def _validate_faithfulness(self) -> None:
        from attribmap.evaluate.perturbation import BASELINES

        known = registry.FAITHFULNESS
        unknown = [name for name in self.faithfulness if name not in known]
        if unknown:
            raise AttribmapError(f"unknown faithfulness metric {unknown[0]!r}; expected some of "
                                 f"{', '.join(known)}")
        for name in ("faithfulness_batch_size", "steps"):
            value = getattr(self, name)
            if name == "faithfulness_batch_size" and value is None:
                continue  # the device's default
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AttribmapError(f"{name} must be a positive int; got {value!r}")
        for name in ("deletion_baseline", "insertion_baseline"):
            if getattr(self, name) not in BASELINES:
                raise AttribmapError(f"{name} must be one of {BASELINES}; got {getattr(self, name)!r}")
        if not self.road_percents or any(not (0 < int(p) < 100) for p in self.road_percents):
            raise AttribmapError(f"road_percents must be integers in (0, 100); got {tuple(self.road_percents)}")
        if not (float(self.road_noise) >= 0):
            raise AttribmapError(f"road_noise must be >= 0; got {self.road_noise!r}")

    def metric_options(self) -> Dict[str, Any]:
        """Options of the metrics (see :func:`attribmap.evaluate.registry.create_metrics`)."""
        return {"delta": float(self.delta), "iou_thresholds": tuple(self.iou_thresholds),
                "tolerance": float(self.pointing_tolerance), "tau": float(self.tau),
                "deletion.steps": int(self.steps), "insertion.steps": int(self.steps),
                "deletion.baseline": self.deletion_baseline, "insertion.baseline": self.insertion_baseline,
                "road.percents": tuple(int(p) for p in self.road_percents), "road.noise": float(self.road_noise),
                "road.seed": int(self.seed), **self.settings()}

    def settings(self) -> Dict[str, Any]:
        """``metric_settings`` as a dict ``{"<metric>.<key>": value}``, values read as their kinds."""
        out = {}
        for key, value in self.metric_settings:
            metric, _, option = str(key).partition(".")
            out[key] = metric_info(metric).option(option).parse(value, key)
        return out

    def faithfulness_names(self) -> Tuple[str, ...]:
        """The faithfulness-family metrics the run scores (``faithfulness`` and those in ``metrics``)."""
        family = registry.FAITHFULNESS
        chosen = [n for n in (self.metrics or ()) if n in family] + list(self.faithfulness)
        return tuple(dict.fromkeys(chosen))

    def extractor_specs(self) -> Tuple[ExtractorSpec, ...]:
        """Every scored extractor as a parsed spec, in table order (aliases last).

        ``i2c`` listed in ``methods`` together with an ``i2c`` checkpoint means the
        checkpoint's class maps (listed once).
        """
        texts = list(self.methods) + list(self.extractors)
        if self.i2c is not None:
            texts = [t for t in texts if t != "i2c"] + [f"i2c={self.i2c}"]
        if self.weightmap is not None:
            texts.append(f"weightmap={self.weightmap}")
        return tuple(ExtractorSpec.parse(t) for t in texts)

    def extractor_names(self) -> Tuple[str, ...]:
        """Labels of every scored extractor, in table order."""
        return tuple(spec.label for spec in self.extractor_specs())

    def as_dict(self) -> Dict[str, Any]:
        """The fields as JSON-ready values (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["methods"] = list(self.methods)
        out["extractors"] = list(self.extractors)
        out["iou_thresholds"] = list(self.iou_thresholds)
        out["faithfulness"] = list(self.faithfulness)
        out["road_percents"] = list(self.road_percents)
        # the newer fields are written only when set: a config that does not use them has the
        # dict (and the fingerprint) it had before they existed
        if self.metrics is None:
            out.pop("metrics")
        else:
            out["metrics"] = list(self.metrics)
        if not self.metric_settings:
            out.pop("metric_settings")
        else:
            out["metric_settings"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.metric_settings}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BenchConfig":
        """The configuration :meth:`as_dict` described (also one written before a field existed).

        Parameters
        ----------
        data : mapping
            Field name -> value, as :meth:`as_dict` writes it (lists for tuples); fields it
            lacks take their defaults.

        Raises
        ------
        AttribmapError
            A key that is no field of :class:`BenchConfig`.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise AttribmapError(f"unknown BenchConfig field(s) {', '.join(unknown)}; expected some of "
                                 f"{', '.join(sorted(names))}")
        values = dict(data)
        for name in ("methods", "extractors", "iou_thresholds", "faithfulness", "road_percents", "metrics"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        settings = values.get("metric_settings", ())
        items = settings.items() if isinstance(settings, Mapping) else settings
        values["metric_settings"] = tuple((str(k), tuple(v) if isinstance(v, list) else v) for k, v in items)
        return cls(**values)

    def fingerprint(self, world_size: int = 1) -> str:
        """SHA-256 of everything that changes the numbers, including the files' sizes and times.

        ``world_size`` is part of it because each process of a sharded run keeps its own
        progress (a run can only be resumed with the same number of processes).
        """
        payload = self.as_dict()
        payload.pop("input_size_from")  # the same size from the recipe or from --input-size gives the same numbers
        payload["data"] = os.path.abspath(self.data)
        for name in ("checkpoint", "i2c", "weightmap", "weights"):
            if payload[name] is not None and os.path.isfile(payload[name]):
                payload[name] = _file_signature(payload[name])
        payload["extractor_files"] = [_file_signature(spec.checkpoint) for spec in self.extractor_specs()
                                      if spec.checkpoint is not None]
        payload["world_size"] = int(world_size)
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
