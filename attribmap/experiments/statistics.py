"""Statistics over seeds: the paired difference with a t-interval, the Spearman correlation."""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

__all__ = ["paired_difference", "spearman"]


def paired_difference(values: Sequence[Optional[float]], baseline: Sequence[Optional[float]],
                      confidence: float = 0.95) -> Dict[str, float]:
    """Mean paired difference ``values - baseline`` over seeds with a t-interval.

    Parameters
    ----------
    values, baseline : sequences of float (None / NaN pairs are dropped)
        One value per seed, in the same seed order.
    confidence : float
        Two-sided confidence level of the interval.

    Returns
    -------
    dict
        ``mean``, ``low``, ``high`` (NaN with fewer than two pairs), ``n``, ``excludes_zero``.
    """
    from scipy import stats

    pairs = [(float(v), float(b)) for v, b in zip(values, baseline)
             if v is not None and b is not None and math.isfinite(v) and math.isfinite(b)]
    n = len(pairs)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0, "excludes_zero": False}
    diffs = [v - b for v, b in pairs]
    mean = sum(diffs) / n
    if n < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": n, "excludes_zero": False}
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    return {"mean": mean, "low": low, "high": high, "n": n, "excludes_zero": bool(low > 0 or high < 0)}


def spearman(x: Sequence[Optional[float]], y: Sequence[Optional[float]]) -> Dict[str, float]:
    """Spearman rank correlation of paired values (None / NaN pairs dropped).

    Parameters
    ----------
    x, y : sequence of float or None
        The paired values (equal length).

    Returns
    -------
    dict
        ``rho`` and two-sided ``p`` (NaN with fewer than three pairs or a constant side), ``n``.
    """
    from scipy import stats

    pairs = [(float(a), float(b)) for a, b in zip(x, y)
             if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 3 or len({a for a, _ in pairs}) < 2 or len({b for _, b in pairs}) < 2:
        return {"rho": float("nan"), "p": float("nan"), "n": len(pairs)}
    result = stats.spearmanr([a for a, _ in pairs], [b for _, b in pairs])
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": len(pairs)}
