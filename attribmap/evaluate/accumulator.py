"""Common machinery of the evaluation accumulators: int64 states that sum exactly."""
from __future__ import annotations

import numpy as np

from attribmap.errors import AttribmapError
from attribmap.distributed import all_reduce_sum
from attribmap.evaluate.exact_sum import exact_normalize

__all__ = ["Accumulator", "taus_for"]


def taus_for(delta: float) -> np.ndarray:
    """Score-map thresholds ``np.arange(0, 1, delta)`` (the reference's exact floats)."""
    delta = float(delta)
    if not (0.0 < delta < 1.0):
        raise AttribmapError(f"delta must be in (0, 1), e.g. 0.001 or 0.01; got {delta!r}")
    return np.arange(0, 1, delta)


class Accumulator:
    """Base class: the state is a dict of int64 numpy arrays that only ever get summed.

    Subclasses define ``_new_state()`` (name -> zero array) and ``_config()`` (a tuple
    that must be equal for two accumulators to be merged). State arrays named in
    ``_exact_state`` hold exact float sums (:mod:`attribmap.evaluate.exact_sum`): their
    carries are propagated after every merge, sync and restore.
    """

    _exact_state: tuple = ()

    def __init__(self) -> None:
        self._state: dict[str, np.ndarray] = self._new_state()

    def _new_state(self) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _config(self) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> "Accumulator":
        """Forget everything accumulated so far."""
        self._state = self._new_state()
        return self

    def merge(self, other: "Accumulator") -> "Accumulator":
        """Add the counts of ``other`` (same class and settings) into this one; returns self."""
        if type(other) is not type(self) or other._config() != self._config():
            raise AttribmapError(
                f"cannot merge {type(other).__name__}{other._config()} into {type(self).__name__}{self._config()}: "
                "class and settings must match")
        for name, value in other._state.items():
            self._state[name] = self._state[name] + value
        return self._settle()

    def _settle(self) -> "Accumulator":
        for name in self._exact_state:
            exact_normalize(self._state[name])
        return self

    def sync(self, process_group=None) -> "Accumulator":
        """Sum the counts of every rank into every rank (torch.distributed all_reduce).

        A no-op when torch.distributed is not initialized. Call it once, on every rank,
        after the last ``update`` and before ``compute``; returns self. ``process_group``: the
        group to reduce over (None: the default group).
        """
        names = sorted(self._state)
        summed = all_reduce_sum([self._state[n] for n in names], process_group)
        self._state = dict(zip(names, summed))
        return self._settle()

    def state(self) -> dict[str, np.ndarray]:
        """A copy of the raw int64 counts (for checkpoints and tests)."""
        return {name: value.copy() for name, value in self._state.items()}

    def load_state(self, state) -> "Accumulator":
        """Replace the counts by ``state`` as returned by :meth:`state` (e.g. from a checkpoint).

        The arrays must have this accumulator's names and shapes; tensors are accepted.
        Returns self.
        """
        current = self._new_state()
        if set(current) != set(state):
            raise AttribmapError(f"saved {type(self).__name__} state has keys {sorted(state)}, "
                                 f"expected {sorted(current)}")
        restored = {}
        for name, value in state.items():
            array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            if array.shape != current[name].shape:
                raise AttribmapError(f"saved {type(self).__name__} state {name!r} has shape {array.shape}, "
                                     f"expected {current[name].shape}")
            restored[name] = array.astype(np.int64).copy()
        self._state = restored
        return self._settle()
