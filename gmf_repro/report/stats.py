"""Numbers over seeds: mean, 95% t-interval, n; paired differences; the three-way decision claims use.

Why a t-interval: a handful of seeds (5 by default) is far too few for a normal approximation or a
bootstrap over seeds; Student's t with n - 1 degrees of freedom is the standard small-sample interval
for a mean, and for a mean of paired differences (same seed, same data) it is the paired t-test's
interval. With n = 1 there is no interval, and the report says so.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats as _scipy_stats

CONFIDENCE = 0.95
INTERVAL = "95% t-interval over seeds"


@dataclass(frozen=True)
class Stat:
    """Mean of ``n`` per-seed values and its 95% t-interval (``low``/``high`` None when n < 2)."""

    mean: float
    n: int
    low: float | None = None
    high: float | None = None

    @property
    def half_width(self) -> float | None:
        return None if self.low is None or self.high is None else (self.high - self.low) / 2


def t_interval(values: list[float] | tuple[float, ...], confidence: float = CONFIDENCE) -> Stat | None:
    """Mean and Student-t interval ``mean ± t_{n-1} * s / sqrt(n)``; None for no values."""
    n = len(values)
    if n == 0:
        return None
    mean = math.fsum(values) / n
    if n == 1:
        return Stat(mean, 1)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Stat(mean, n, mean - half, mean + half)


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> dict[int, float]:
    """a - b on the seeds both have (same seed = same data and initialisation draw)."""
    return {s: a[s] - b[s] for s in sorted(set(a) & set(b))}


def decide(diffs: Mapping[int, float], exact: bool = False) -> tuple[str, Stat | None]:
    """Whether ``diff >= 0`` (the claim's side) holds: "yes", "no" or "inconclusive", and the statistic.

    Over seeds: "yes" only when the whole interval is above 0, "no" only when it is below 0. One seed
    has no interval and is "inconclusive". ``exact`` numbers (the paper's own table) are compared as is.
    """
    stat = t_interval(list(diffs.values()))
    if stat is None:
        return "not testable", None
    if exact:
        return ("yes" if stat.mean >= -1e-12 else "no"), stat
    if stat.low is None or stat.high is None:
        return "inconclusive", stat
    if stat.low > 0:
        return "yes", stat
    if stat.high < 0:
        return "no", stat
    return "inconclusive", stat


def fmt_stat(stat: Stat | None, decimals: int = 2, signed: bool = False, exact: bool = False) -> str:
    """``12.30 ± 0.45 (n=5)``, ``12.30 (n=1, no interval)``, or the bare number when ``exact``."""
    if stat is None:
        return "-"
    sign = "+" if signed else ""
    text = f"{stat.mean:{sign}.{decimals}f}"
    if exact:
        return text
    if stat.half_width is None:
        return f"{text} (n={stat.n}, no interval)"
    return f"{text} ± {stat.half_width:.{decimals}f} (n={stat.n})"


def fmt_interval(stat: Stat | None, decimals: int = 2) -> str:
    """``[+0.12, +0.80]`` or ``no interval``."""
    if stat is None or stat.low is None or stat.high is None:
        return "no interval"
    return f"[{stat.low:+.{decimals}f}, {stat.high:+.{decimals}f}]"
