"""Raw maps of the randomization stages kept on disk, so a long sanity run can stop and go on.

One file per (test, stage, method): ``<test>-<stage>-<key>.pt`` holding the method's raw maps
(N, h, w) as it returned them, on the CPU. The key hashes everything the maps depend on: the
trained model's parameters and buffers, the images, the targets, the randomization blocks and
seed, the tapped layer, the method with its options, and the device type. A run with other
settings therefore never reads a file of another; a run with more stages or more methods
reads what an earlier one left and computes the rest. Files are written atomically, each as
soon as its stage is done, so an interrupted run loses at most the stage in progress.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence, Union

import torch

from attribmap.errors import AttribmapError
from attribmap.fileio import atomic_write_bytes

__all__ = ["StageCache"]


def _tensor_digest(digest: "hashlib._Hash", tensor: torch.Tensor) -> None:
    data = tensor.detach().cpu().contiguous()
    digest.update(f"{data.dtype}{tuple(data.shape)}".encode())
    digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")


class StageCache:
    """Raw maps per (test, stage, method) under ``folder``, keyed by what they depend on.

    Parameters
    ----------
    folder : path
        Where the files go (created when missing).
    model : nn.Module
        The trained model (its state dict and class enter the key).
    images : Tensor (N, C, H, W)
        The input batch.
    targets : Tensor (N,)
        The class explained per image.
    blocks : sequence of str
        The randomization blocks, input to logits (the cascade's order).
    seed : int
        Seed of the re-initialisations.
    layer : any
        The layer the post-hoc methods tap (its ``repr`` enters the key).
    options : dict, optional
        Per-method options.
    device : torch.device
        Where the maps are computed (its type enters the key: CPU and GPU maps differ by rounding).
    """

    def __init__(self, folder: Union[str, Path], model: torch.nn.Module, images: torch.Tensor,
                 targets: torch.Tensor, blocks: Sequence[str], seed: int, layer: Any,
                 options: Optional[Dict[str, Dict[str, Any]]], device: torch.device) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise AttribmapError(f"the stage cache {str(self.folder)!r} is a file, not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        digest.update(type(model).__qualname__.encode())
        for name, value in model.state_dict().items():
            digest.update(name.encode())
            _tensor_digest(digest, value)
        _tensor_digest(digest, images)
        _tensor_digest(digest, targets)
        digest.update(json.dumps([list(blocks), int(seed), repr(layer), torch.device(device).type]).encode())
        self._base = digest.hexdigest()
        self._options = options or {}
        self.last_loaded = 0  # methods the last load() found

    def _path(self, test: str, stage: str, method: str) -> Path:
        options = dict(self._options.get(method, {}))
        key = hashlib.sha256(json.dumps([self._base, test, stage, method, options], sort_keys=True,
                                        default=repr).encode()).hexdigest()[:20]
        readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{test}-{stage}-{method}")[:80]
        return self.folder / f"{readable}-{key}.pt"

    def load(self, test: str, stage: str, methods: Iterable[str]) -> Dict[str, torch.Tensor]:
        """The cached raw maps of ``methods`` at this stage (the methods without a file are absent).

        Parameters
        ----------
        test : str
            ``"trained"``, ``"cascading"`` or ``"independent"``.
        stage : str
            ``"original"`` or a block name.
        methods : iterable of str
            Method specs, as given to :func:`~attribmap.sanity.model_randomization`.

        Returns
        -------
        dict
            method -> raw maps (N, h, w) on the CPU.
        """
        found: Dict[str, torch.Tensor] = {}
        for method in methods:
            path = self._path(test, stage, method)
            if path.is_file():
                try:
                    found[method] = torch.load(path, map_location="cpu", weights_only=True)["maps"]
                except Exception:  # noqa: BLE001 - a damaged file is recomputed, never trusted
                    path.unlink(missing_ok=True)
        self.last_loaded = len(found)
        return found

    def save(self, test: str, stage: str, maps: Dict[str, torch.Tensor]) -> None:
        """Write each method's raw maps of this stage, atomically.

        ``test`` and ``stage`` as :meth:`load`; ``maps`` is method -> raw maps (N, h, w), on any
        device.
        """
        for method, value in maps.items():
            buffer = io.BytesIO()
            torch.save({"test": test, "stage": stage, "method": method, "maps": value.detach().cpu()}, buffer)
            atomic_write_bytes(self._path(test, stage, method), buffer.getvalue())
