"""The published CAM numbers of "Evaluating WSOL Right" and the recipe that reproduces them.

``benchmarks/reproduce_paper.py`` is the command line over this module.

Published test-split numbers of vanilla CAM (MaxBoxAccV2 on CUB / ImageNet, PxAP on
OpenImages; from the protocol's authors, see PROTOCOL.md):

============  =======  ============  ========
dataset       VGG16    InceptionV3   ResNet50
============  =======  ============  ========
CUB           63.7     56.7          63.0
ImageNet      60.0     63.4          63.7
OpenImages    58.3     63.2          58.5
============  =======  ============  ========

The protocol's CAM recipe (:func:`cam_recipe`): SGD, momentum 0.9, batch 32, 224 px crops,
head learning rate x 10 over pretrained weights, step decay (tenfold every 15 epochs on CUB);
CUB 50 epochs, ImageNet and OpenImages 10 epochs, plain cross-entropy (no blank images).

* :func:`reproduce` - train (or reuse) the CAM classifier, benchmark CAM on the test split
  and compare with the published figure;
* :func:`synthetic_setup` - the same recipe CPU-sized on a small synthetic suite.

References
----------
Choe, J., Oh, S. J., Lee, S., Chun, S., Akata, Z., Shim, H. Evaluating Weakly Supervised
Object Localization Methods Right. CVPR 2020.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from attribmap.errors import AttribmapError

__all__ = ["PUBLISHED", "METRIC", "WSOL_ARCH", "SCHEDULE", "WEIGHT_DECAY", "DEFAULT_LR", "published_value",
           "cam_recipe", "SyntheticSetup", "synthetic_setup", "train_cam_classifier", "comparison_line",
           "reproduce"]

#: (dataset, arch) -> published value; the metric is :data:`METRIC` of the dataset.
PUBLISHED: Dict[Tuple[str, str], float] = {
    ("cub", "vgg16"): 63.7, ("cub", "inception_v3"): 56.7, ("cub", "resnet50"): 63.0,
    ("imagenet", "vgg16"): 60.0, ("imagenet", "inception_v3"): 63.4, ("imagenet", "resnet50"): 63.7,
    ("openimages", "vgg16"): 58.3, ("openimages", "inception_v3"): 63.2, ("openimages", "resnet50"): 58.5,
}
#: dataset -> the metric its published figure reports.
METRIC: Dict[str, str] = {"cub": "MaxBoxAccV2", "imagenet": "MaxBoxAccV2", "openimages": "PxAP"}
#: Paper architecture -> the attribmap architecture that follows the protocol's CAM network.
WSOL_ARCH: Dict[str, str] = {"vgg16": "vgg16_gap", "inception_v3": "inception_v3_spg", "resnet50": "resnet50_wsol"}
#: dataset -> training length and step-decay period of the protocol's CAM runs. CUB decays
#: every 15 epochs (``--lr_decay_frequency 15`` in public run scripts of wsolevaluation-based
#: code); the decay period of the 10-epoch runs is not known here, 30 means no decay.
SCHEDULE: Dict[str, Dict[str, int]] = {"cub": {"epochs": 50, "lr_step_size": 15},
                                       "imagenet": {"epochs": 10, "lr_step_size": 30},
                                       "openimages": {"epochs": 10, "lr_step_size": 30}}
#: Paper architecture -> weight decay of its CAM run.
WEIGHT_DECAY: Dict[str, float] = {"vgg16": 5e-4, "inception_v3": 5e-4, "resnet50": 1e-4}
#: The learning rate of public wsolevaluation run scripts for ResNet50 on CUB (check it
#: against the authors' hyper-parameter sheet for the other architectures and datasets).
DEFAULT_LR = 2.3222617e-4


def published_value(dataset: str, arch: str) -> float:
    """The published CAM figure of ``dataset`` (cub, imagenet, openimages) and ``arch``.

    Raises
    ------
    AttribmapError
        For a dataset or architecture without a published figure.
    """
    if (dataset, arch) not in PUBLISHED:
        raise AttribmapError(f"no published CAM figure for dataset {dataset!r} and arch {arch!r}; expected a "
                             f"dataset of {sorted(METRIC)} and an arch of {sorted(WSOL_ARCH)}")
    return PUBLISHED[(dataset, arch)]


def cam_recipe(dataset: str, arch: str, *, lr: float = DEFAULT_LR, weights: Optional[str] = "DEFAULT",
               **overrides: Any):
    """The protocol's CAM training recipe for ``dataset`` and the paper architecture ``arch``.

    Parameters
    ----------
    dataset : str
        ``"cub"``, ``"imagenet"`` or ``"openimages"`` (training length and decay period).
    arch : str
        A paper architecture (``"vgg16"``, ``"inception_v3"``, ``"resnet50"``: mapped by
        :data:`WSOL_ARCH`) or any attribmap architecture (weight decay 1e-4).
    lr : float
        Base learning rate (the head gets ten times this over pretrained ``weights``).
    weights : str, optional
        torchvision pretrained weights of the backbone (``"DEFAULT"``; None: from scratch).
    **overrides
        Other :class:`~attribmap.train.ClassifierRecipe` fields (``epochs``,
        ``image_size``, ``batch_size``, ...), applied last.

    Returns
    -------
    ClassifierRecipe
        SGD with momentum 0.9, step schedule, batch 32, 224 px, no blank images.
    """
    from attribmap.train.recipe import ClassifierRecipe

    if dataset not in SCHEDULE:
        raise AttribmapError(f"unknown dataset {dataset!r}; expected one of {sorted(SCHEDULE)}")
    fields: Dict[str, Any] = dict(arch=WSOL_ARCH.get(arch, arch), epochs=SCHEDULE[dataset]["epochs"], batch_size=32,
                                  lr=lr, image_size=224, optimizer="sgd", momentum=0.9,
                                  weight_decay=WEIGHT_DECAY.get(arch, 1e-4), schedule="step",
                                  lr_step_size=SCHEDULE[dataset]["lr_step_size"], weights=weights,
                                  blank_fraction=0.0)
    fields.update(overrides)
    return ClassifierRecipe(**fields)


@dataclass(frozen=True)
class SyntheticSetup:
    """A small synthetic suite and the CPU-sized recipe overrides used on it.

    Attributes
    ----------
    data : str
        The suite's root (wsolevaluation layout).
    overrides : dict
        :func:`cam_recipe` arguments replacing the protocol's (arch, epochs, image size,
        batch size, learning rate, no pretrained weights).
    """

    data: str
    overrides: Mapping[str, Any]


def synthetic_setup(out: os.PathLike | str) -> SyntheticSetup:
    """Generate (or reuse) a 4-class synthetic suite under ``out/suite`` for a CPU-sized run.

    Parameters
    ----------
    out : path
        Working directory; the suite goes to ``out/suite`` (kept when it exists).

    Returns
    -------
    SyntheticSetup
    """
    from attribmap.data.synthetic import generate_suite

    suite = Path(out) / "suite"
    if not (suite / "suite.json").is_file():
        generate_suite(suite, classes=4, per_class=40, size=96, val_per_class=0, test_per_class=15, overwrite=True)
    return SyntheticSetup(str(suite), {"arch": "resnet18_small", "epochs": 3, "image_size": 64, "batch_size": 16,
                                       "lr": 0.01, "weights": None})


def train_cam_classifier(recipe, data: str, out: os.PathLike | str, *, device: str = "cpu",
                         metadata: Optional[str] = None, log: Optional[Callable[[str], None]] = None) -> Path:
    """Train the CAM classifier of ``recipe`` into ``out/cam_classifier.pt`` (reused when present).

    Parameters
    ----------
    recipe : ClassifierRecipe
        Usually :func:`cam_recipe`.
    data : str
        Dataset images root (wsolevaluation ``dataset/<NAME>``, CUB_200_2011 or a suite).
    out : path
        Working directory.
    device : str
        Training device.
    metadata : str, optional
        wsolevaluation ``metadata/<NAME>`` directory.
    log : callable, optional
        Receives one line per epoch.

    Returns
    -------
    pathlib.Path
        The checkpoint (training resumes from its ``.last`` file after an interruption).
    """
    from attribmap.train import train

    checkpoint = Path(out) / "cam_classifier.pt"
    say = log or (lambda line: None)
    if checkpoint.is_file():
        say(f"reusing {checkpoint}")
        return checkpoint
    train(recipe, data, checkpoint, device=device, metadata_root=metadata, resume=True, log=log)
    return checkpoint


def comparison_line(results: Mapping[str, Any], dataset: str, arch: str, *, synthetic: bool = False,
                    seconds: Optional[float] = None) -> str:
    """One line: the measured CAM figure of a benchmark's ``results`` beside the published one.

    Parameters
    ----------
    results : mapping
        A ``results.json`` of :func:`~attribmap.bench.run_benchmark` with a ``cam`` extractor.
    dataset, arch : str
        Which published figure (:func:`published_value`); its metric is :data:`METRIC`.
    synthetic : bool
        The run was on the synthetic suite (the published figure is a reference point only).
    seconds : float, optional
        Wall time to report.

    Returns
    -------
    str
        E.g. ``"CAM MaxBoxAccV2, cub / resnet50: measured 62.4, published 63.0 (cub / resnet50)"``.
    """
    metric = METRIC[dataset]
    published = published_value(dataset, arch)
    measured = results["extractors"]["cam"].get(metric)
    label = "synthetic suite (reference only)" if synthetic else f"{dataset} / {arch}"
    measured_text = "n/a" if measured is None else f"{measured:.1f}"
    line = f"CAM {metric}, {label}: measured {measured_text}, published {published:.1f} ({dataset} / {arch})"
    return line if seconds is None else f"{line}; {seconds:.0f} s"


def reproduce(out: os.PathLike | str, *, dataset: str = "cub", arch: str = "resnet50",
              data: Optional[str] = None, metadata: Optional[str] = None, checkpoint: Optional[str] = None,
              lr: float = DEFAULT_LR, weights: Optional[str] = "DEFAULT", synthetic: bool = False,
              device: str = "cpu", batch_size: int = 32, delta: float = 0.001,
              log: Optional[Callable[[str], None]] = None) -> Tuple[Dict[str, Any], str]:
    """Train or reuse the CAM classifier, benchmark CAM on the test split, compare.

    Parameters
    ----------
    out : path
        Working directory: the classifier, ``report/`` (the benchmark report) and, with
        ``synthetic``, ``suite/``.
    dataset, arch : str
        The published figure compared with (:func:`published_value`) and the recipe.
    data, metadata : str, optional
        Dataset images root and wsolevaluation metadata directory (ignored with
        ``synthetic``; ``data`` is required otherwise).
    checkpoint : str, optional
        An existing CAM classifier; without it one is trained with :func:`cam_recipe`.
    lr : float
        Base learning rate of the recipe.
    weights : str, optional
        Pretrained backbone weights of the recipe.
    synthetic : bool
        Run the recipe CPU-sized on a small synthetic suite (:func:`synthetic_setup`).
    device : str
        Training and benchmark device.
    batch_size : int
        Benchmark batch size.
    delta : float
        Threshold step of the official protocol (0.001).
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    (dict, str)
        The benchmark results and the :func:`comparison_line`.
    """
    from attribmap.bench import BenchConfig, run_benchmark

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    published_value(dataset, arch)  # fail early on a pair without a figure
    input_size = 224
    if synthetic:
        setup = synthetic_setup(out)
        data, metadata = setup.data, None
        recipe = cam_recipe("cub", setup.overrides["arch"], **{k: v for k, v in setup.overrides.items()
                                                                if k != "arch"})
        input_size = recipe.image_size
        path = train_cam_classifier(recipe, data, out, device=device, log=log)
    elif data is None:
        raise AttribmapError("reproduce needs data= (the dataset images root) unless synthetic=True")
    elif checkpoint is not None:
        path = Path(checkpoint)
    else:
        path = train_cam_classifier(cam_recipe(dataset, arch, lr=lr, weights=weights), data, out, device=device,
                                    metadata=metadata, log=log)
    config = BenchConfig(data=data, metadata=metadata, split="test", checkpoint=str(path), methods=("cam",),
                         delta=delta, input_size=input_size, batch_size=batch_size, device=device)
    results = run_benchmark(config, out / "report", progress=None, log=log)
    return results, comparison_line(results, dataset, arch, synthetic=synthetic,
                                    seconds=time.perf_counter() - started)
