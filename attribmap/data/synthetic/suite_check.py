"""Is a suite able to tell part-dominated maps from whole-object maps? The validity check.

The rule, fixed before any number was looked at (MaxBoxAccV2 on the scored split):

1. ``parts`` <= ``pooled`` - margin: a map of the discriminative parts alone, however exact,
   localizes far worse than a map of the whole object at CAM resolution;
2. ``centre`` <= ``pooled`` - margin: a fixed centred prior that ignores the image does too;
3. (when a CAM score is given) ``cam`` > ``centre``: a plain CAM of the suite's classifier
   localizes better than that prior, so the classifier looks at the objects.

The margin is :data:`VALIDITY_MARGIN` = 15 MaxBoxAccV2 points. The pooled row is the binding
one: it scores at most about as high as the unpooled whole-object row. Parts 1-2 need only the
ground truth (``attribmap synth`` prints them); part 3 needs a trained classifier (the bench
report and the demo pass its CAM score).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional, Union

from attribmap.data.synthetic.reference import DEFAULT_GRID, REFERENCE_ROWS, row_title
from attribmap.errors import AttribmapError

__all__ = ["VALIDITY_MARGIN", "SuiteCheck", "check_suite", "format_reference_table"]

VALIDITY_MARGIN = 15.0


def _v2(scores: Mapping[str, Mapping], name: str) -> float:
    if name not in scores or "MaxBoxAccV2" not in scores[name]:
        raise AttribmapError(f"reference-row scores lack {name!r} with a 'MaxBoxAccV2' value "
                             f"(score_reference_rows with rows including {name!r}); got rows {sorted(scores)}")
    return float(scores[name]["MaxBoxAccV2"])


@dataclass(frozen=True)
class SuiteCheck:
    """Outcome of :func:`check_suite` (all values MaxBoxAccV2, in points).

    Attributes
    ----------
    pooled, parts, centre
        The reference rows' scores.
    margin
        Required distance below ``pooled``.
    cam
        The CAM score given, or ``None`` (then the CAM part is not checked).
    """

    pooled: float
    parts: float
    centre: float
    margin: float = VALIDITY_MARGIN
    cam: Optional[float] = None

    @property
    def parts_ok(self) -> bool:
        """Whether the parts-only row scores at least ``margin`` below the pooled row."""
        return self.parts <= self.pooled - self.margin

    @property
    def centre_ok(self) -> bool:
        """Whether the centre prior scores at least ``margin`` below the pooled row."""
        return self.centre <= self.pooled - self.margin

    @property
    def ground_truth_ok(self) -> bool:
        """Parts 1 and 2 (the ground-truth part of the check)."""
        return self.parts_ok and self.centre_ok

    @property
    def cam_ok(self) -> Optional[bool]:
        """Part 3, or ``None`` without a CAM score."""
        return None if self.cam is None else self.cam > self.centre

    @property
    def passed(self) -> bool:
        """Every part that could be checked passed (see :attr:`complete`)."""
        return self.ground_truth_ok and self.cam_ok is not False

    @property
    def complete(self) -> bool:
        """Whether the CAM part was checked too."""
        return self.cam is not None

    def lines(self) -> List[str]:
        """One line per part of the check, then the verdict."""
        def mark(ok: bool) -> str:
            return "ok  " if ok else "FAIL"

        out = [f"{mark(self.parts_ok)} parts only {self.parts:.1f} <= pooled object {self.pooled:.1f} - "
               f"{self.margin:g} = {self.pooled - self.margin:.1f}",
               f"{mark(self.centre_ok)} centre prior {self.centre:.1f} <= pooled object {self.pooled:.1f} - "
               f"{self.margin:g} = {self.pooled - self.margin:.1f}"]
        if self.cam is None:
            out.append("--   CAM > centre prior: not checked here (needs the suite's trained classifier)")
        else:
            out.append(f"{mark(bool(self.cam_ok))} CAM {self.cam:.1f} > centre prior {self.centre:.1f}")
        verdict = "valid" if self.passed else "NOT valid"
        scope = "" if self.complete else " (ground-truth part only)"
        out.append(f"suite {verdict}{scope} (MaxBoxAccV2, margin {self.margin:g} points)")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def check_suite(scores: Mapping[str, Mapping], cam: Union[float, Mapping, None] = None,
                margin: float = VALIDITY_MARGIN) -> SuiteCheck:
    """Apply the validity rule to reference-row scores.

    Parameters
    ----------
    scores
        :func:`~attribmap.data.synthetic.reference.score_reference_rows` output (needs the
        ``parts``, ``centre`` and ``pooled`` rows).
    cam
        A plain CAM's MaxBoxAccV2 on the same images (a number, or an
        :func:`~attribmap.evaluate.evaluate_maps` result); ``None`` checks the ground-truth
        part only.
    margin
        Points below the pooled row that parts-only and the centre prior must stay.

    Returns
    -------
    SuiteCheck
        ``passed``, per-part results and printable ``lines()``.

    Example
    -------
    >>> check = check_suite({"parts": {"MaxBoxAccV2": 0.0}, "centre": {"MaxBoxAccV2": 17.3},
    ...                      "pooled": {"MaxBoxAccV2": 95.7}}, cam=30.0)
    >>> check.passed
    True
    """
    if cam is not None and not isinstance(cam, (int, float)):
        if not isinstance(cam, Mapping) or "MaxBoxAccV2" not in cam:
            raise AttribmapError(f"cam must be a MaxBoxAccV2 number or an evaluate_maps result with "
                                 f"'MaxBoxAccV2'; got {type(cam).__name__}")
        cam = cam["MaxBoxAccV2"]
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin < 0:
        raise AttribmapError(f"margin must be a number >= 0, got {margin!r}")
    return SuiteCheck(pooled=_v2(scores, "pooled"), parts=_v2(scores, "parts"), centre=_v2(scores, "centre"),
                      margin=float(margin), cam=None if cam is None else float(cam))


def format_reference_table(scores: Mapping[str, Mapping], grid: int = DEFAULT_GRID) -> str:
    """The reference rows' ``scores`` as a plain-text table (MaxBoxAcc, MaxBoxAccV2 and its IoU 30/50/70, PxAP); the pooled row's title names its ``grid``."""
    header = f"{'reference row':44s} {'MaxBoxAcc':>9s} {'MaxBoxAccV2':>11s} {'(IoU 30 / 50 / 70)':>23s} {'PxAP':>6s}"
    lines = [header, "-" * len(header)]
    for name in [n for n in REFERENCE_ROWS if n in scores] + [n for n in scores if n not in REFERENCE_ROWS]:
        row = scores[name]
        title = row_title(name, grid) if name in REFERENCE_ROWS else name
        per_iou = row.get("MaxBoxAccV2_per_iou", {})
        detail = " / ".join(f"{per_iou[k]:.1f}" for k in sorted(per_iou))
        pxap = f"{row['PxAP']:6.1f}" if "PxAP" in row else f"{'-':>6s}"
        lines.append(f"{title:44s} {row['MaxBoxAcc']:9.1f} {row['MaxBoxAccV2']:11.1f} {detail:>23s} {pxap}")
    return "\n".join(lines)
