"""Wilson score intervals for a proportion (Wilson 1927).

For ``k`` successes in ``n`` trials and ``z`` the two-sided normal quantile of the confidence::

    centre = (p + z^2 / 2n) / (1 + z^2 / n)
    half   = z * sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)

The interval always lies inside [0, 1] and, unlike the normal approximation, is sensible for
``k = 0`` or ``k = n`` and small ``n``. ``n = 0`` gives the uninformative ``(0, 1)``.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from text2seg_widgets.errors import InputError

__all__ = ["wilson_interval"]


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """``(low, high)`` Wilson score interval of the proportion ``k / n`` at ``confidence``."""
    if n < 0 or k < 0 or k > n:
        raise InputError(f"need 0 <= k <= n for a proportion, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
