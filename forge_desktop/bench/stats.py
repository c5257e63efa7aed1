"""Statistics for benchmark timings (all values in milliseconds).

Why this module exists: a single number per runtime hides noise, cold caches and
outliers, so every comparison the CLI prints is backed by a robust summary, a
bootstrap confidence interval and a rank test. Everything here is a pure function.

scipy and numpy are imported lazily inside the functions that need them so that
``import forge_desktop.bench.stats`` (and therefore CLI start-up) stays cheap.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Shift",
    "Summary",
    "benjamini_hochberg",
    "bootstrap_median_ci",
    "log_median_ratio_sd",
    "mad_outliers",
    "mann_whitney_p",
    "mean",
    "median",
    "percentile",
    "percentile_ci",
    "rate_ci",
    "ratio_of_medians_ci",
    "reliability_warnings",
    "session_drift",
    "session_shift",
    "stdev",
    "summarize",
    "verdict",
]

_MAD_SCALE = 0.6745  # Phi^-1(0.75): makes MAD comparable to a standard deviation.
_MEANAD_SCALE = 1.253314  # sqrt(pi/2): same role for the mean absolute deviation.


def _median(values: Sequence[float]) -> float:
    """Median without the statistics module (a resident tray should not import decimal)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of an empty sample")
    mid = n // 2
    return float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def _fmean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of an empty sample")
    return math.fsum(values) / len(values)


def _checked(xs: Sequence[float]) -> list[float]:
    """Copy to floats and reject empty or non-finite input so errors surface early."""
    values = [float(x) for x in xs]
    if not values:
        raise ValueError("no samples")
    if not all(math.isfinite(x) for x in values):
        raise ValueError("samples must be finite numbers")
    return values


def median(xs: Sequence[float]) -> float:
    """Median: the headline number, because timings are skewed by slow runs."""
    return float(_median(_checked(xs)))


def mean(xs: Sequence[float]) -> float:
    """Arithmetic mean, reported next to the median to reveal skew."""
    return float(_fmean(_checked(xs)))


def stdev(xs: Sequence[float]) -> float:
    """Sample standard deviation (n-1); 0.0 for a single run, which has no spread."""
    values = _checked(xs)
    if len(values) < 2:
        return 0.0
    import statistics  # lazily: it pulls in decimal and fractions

    return float(statistics.stdev(values))


def percentile(xs: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation, matching numpy's default, without numpy."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in 0..100, got {q}")
    values = sorted(_checked(xs))
    h = (len(values) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (h - lo) * (values[hi] - values[lo])


def mad_outliers(xs: Sequence[float], threshold: float = 3.5) -> list[int]:
    """Indexes of outliers by the Iglewicz-Hoaglin modified z-score.

    Median-based so that the outliers themselves cannot mask each other, unlike a
    mean/sd rule. When more than half the runs are identical the MAD is 0, so fall
    back to the mean absolute deviation (scaled by 1.253314); if that is 0 too,
    every run is equal and nothing is an outlier.
    """
    values = _checked(xs)
    med = _median(values)
    deviations = [abs(x - med) for x in values]
    mad = _median(deviations)
    if mad > 0:
        scores = [_MAD_SCALE * d / mad for d in deviations]
    else:
        mean_ad = _fmean(deviations)
        if mean_ad == 0:
            return []
        scores = [d / (_MEANAD_SCALE * mean_ad) for d in deviations]
    return [i for i, z in enumerate(scores) if z > threshold]


def _finite_interval(lo: Any, hi: Any) -> tuple[float, float] | None:
    """Return the interval as floats, or None when scipy produced NaN/inf."""
    flo, fhi = float(lo), float(hi)
    if math.isfinite(flo) and math.isfinite(fhi):
        return flo, fhi
    return None


def _bootstrap_interval(
    data: tuple[Any, ...],
    statistic: Any,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
    methods: Sequence[str],
) -> tuple[float, float] | None:
    """Run scipy.stats.bootstrap trying each method in turn.

    A method is abandoned when it raises or warns (BCa warns on degenerate
    bootstrap distributions, e.g. heavy ties) or yields a non-finite bound. A fresh
    generator per attempt keeps the result a pure function of ``seed``.
    """
    import numpy as np
    from scipy import stats as sps

    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                res = sps.bootstrap(
                    data,
                    statistic,
                    n_resamples=n_resamples,
                    vectorized=True,
                    paired=False,
                    confidence_level=confidence,
                    method=method,
                    rng=np.random.default_rng(seed),
                )
            except (ValueError, ArithmeticError, Warning):
                continue
        interval = _finite_interval(res.confidence_interval.low, res.confidence_interval.high)
        if interval is not None:
            return interval
    return None


def _median_stat(x: Any, axis: int = -1) -> Any:
    import numpy as np

    return np.median(x, axis=axis)


def bootstrap_median_ci(
    xs: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap confidence interval of the median (BCa, else percentile).

    BCa corrects the bias and skew typical of timing data; it fails on degenerate
    (tied) data, where the plain percentile interval is still meaningful. With
    fewer than 3 runs or all-equal runs a bootstrap says nothing, so the honest
    interval is the observed range. The interval is widened to include the sample
    median if the discrete bootstrap distribution would exclude it, and kept within
    the observed range.
    """
    values = _checked(xs)
    lo_obs, hi_obs = min(values), max(values)
    if len(values) < 3 or lo_obs == hi_obs:
        return lo_obs, hi_obs
    interval = _bootstrap_interval(
        (values,),
        _median_stat,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        methods=("BCa", "percentile"),
    )
    if interval is None:
        return lo_obs, hi_obs
    med = _median(values)
    # Clamp: interpolation rounding can step a hair outside the observed range.
    return max(min(interval[0], med), lo_obs), min(max(interval[1], med), hi_obs)


def percentile_ci(xs: Sequence[float], q: float, confidence: float = 0.95,
                  n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap (percentile method) confidence interval of the ``q``-th percentile.

    A high percentile of a few runs is the largest of them, which a bootstrap cannot see
    beyond: the interval is then honest only in one direction, so it is widened to include
    the estimate and clamped to the observed range, as :func:`bootstrap_median_ci` does."""
    values = _checked(xs)
    lo_obs, hi_obs = min(values), max(values)
    est = percentile(values, q)
    if len(values) < 3 or lo_obs == hi_obs:
        return lo_obs, hi_obs

    def stat(x: Any, axis: int = -1) -> Any:
        import numpy as np

        return np.percentile(x, q, axis=axis)

    interval = _bootstrap_interval((values,), stat, confidence=confidence,
                                   n_resamples=n_resamples, seed=seed, methods=("percentile",))
    if interval is None:
        return lo_obs, hi_obs
    return max(min(interval[0], est), lo_obs), min(max(interval[1], est), hi_obs)


def rate_ci(rate: float, durations: Sequence[float], confidence: float = 0.95,
            n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Confidence interval of a throughput ``rate`` (completions per second) of a system that
    keeps a fixed number of jobs in flight, from the jobs' ``durations``. By Little's law the
    rate is the number in flight over the mean duration, so its relative uncertainty is the
    mean duration's: the interval is ``rate * mean / [hi, lo]`` of the bootstrap interval of
    the mean. (The gaps between completions are no basis for it: with several jobs in flight
    they come in bursts, and resampling them as if independent overstates the spread.) With
    fewer than 3 durations, or all equal, the extreme ratios are used instead."""
    values = _checked(durations)
    if min(values) <= 0 or not math.isfinite(rate) or rate <= 0:
        raise ValueError("durations and the rate must be positive")
    avg = _fmean(values)
    if len(values) < 3 or min(values) == max(values):
        return rate * avg / max(values), rate * avg / min(values)

    def mean_stat(x: Any, axis: int = -1) -> Any:
        import numpy as np

        return np.mean(x, axis=axis)

    interval = _bootstrap_interval((values,), mean_stat, confidence=confidence,
                                   n_resamples=n_resamples, seed=seed,
                                   methods=("BCa", "percentile"))
    if interval is None or interval[0] <= 0:
        return rate * avg / max(values), rate * avg / min(values)
    return min(rate * avg / interval[1], rate), max(rate * avg / interval[0], rate)


@dataclass(frozen=True)
class Summary:
    """Everything a report needs about one set of runs, in milliseconds."""

    n: int
    median_ms: float
    mean_ms: float
    stdev_ms: float
    min_ms: float
    max_ms: float
    p95_ms: float
    ci95_ms: tuple[float, float]
    outliers: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the CI as a 2-list, since JSON has no tuples)."""
        return {
            "n": self.n,
            "median_ms": self.median_ms,
            "mean_ms": self.mean_ms,
            "stdev_ms": self.stdev_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "p95_ms": self.p95_ms,
            "ci95_ms": [self.ci95_ms[0], self.ci95_ms[1]],
            "outliers": self.outliers,
        }


def summarize(xs: Sequence[float]) -> Summary:
    """Summarise one set of runs; raises ValueError on empty input."""
    values = _checked(xs)
    return Summary(
        n=len(values),
        median_ms=median(values),
        mean_ms=mean(values),
        stdev_ms=stdev(values),
        min_ms=min(values),
        max_ms=max(values),
        p95_ms=percentile(values, 95.0),
        ci95_ms=bootstrap_median_ci(values, confidence=0.95),
        outliers=len(mad_outliers(values)),
    )


def _ratio_stat(candidate: Any, baseline: Any, axis: int = -1) -> Any:
    import numpy as np

    return np.median(baseline, axis=axis) / np.median(candidate, axis=axis)


def ratio_of_medians_ci(
    candidate: Sequence[float],
    baseline: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """Speed-up ``median(baseline) / median(candidate)`` with a bootstrap CI.

    Oriented so that 2.0 reads "candidate is 2.0x faster than baseline". The two
    sets of runs are independent, so they are resampled separately (paired=False).
    With fewer than 3 runs on either side the interval is the extreme ratios
    ``min(baseline)/max(candidate) .. max(baseline)/min(candidate)``. Timings must
    be positive: a ratio against a zero time is meaningless.
    """
    cand = _checked(candidate)
    base = _checked(baseline)
    if min(cand) <= 0 or min(base) <= 0:
        raise ValueError("timings must be positive to form a ratio")
    ratio = _median(base) / _median(cand)
    extremes = (min(base) / max(cand), max(base) / min(cand))
    if len(cand) < 3 or len(base) < 3:
        return ratio, extremes
    interval = _bootstrap_interval(
        (cand, base),
        _ratio_stat,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        methods=("percentile",),
    )
    if interval is None:
        interval = extremes
    return ratio, (min(interval[0], ratio), max(interval[1], ratio))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value: a rank test, robust to skewed timings.

    Identical constant samples carry no evidence of a difference; scipy returns
    NaN there (zero variance), so report 1.0 instead.
    """
    xa = _checked(a)
    xb = _checked(b)
    if len(set(xa) | set(xb)) == 1:
        return 1.0
    from scipy import stats as sps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(sps.mannwhitneyu(xa, xb, alternative="two-sided", method="auto").pvalue)
    return p if math.isfinite(p) else 1.0


def verdict(
    ratio: float,
    ci: tuple[float, float],
    p_value: float,
    alpha: float = 0.05,
    min_factor: float = 1.0,
) -> str:
    """Plain-language call for a ratio from :func:`ratio_of_medians_ci`.

    Requires both a significant rank test and a CI clear of 1, so that neither a
    tiny-but-significant shift nor a wide lucky interval is reported as a win;
    ``min_factor`` additionally ignores differences too small to matter.
    """
    if p_value < alpha and ratio > 0:
        if ci[0] > 1.0 and ratio >= min_factor:
            return "faster"
        if ci[1] < 1.0 and 1.0 / ratio >= min_factor:
            return "slower"
    return "no significant difference"


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values, in the order given (step-up, capped at 1).

    ``adjusted[i] = min over ranks k >= rank(i) of p_(k) * m / k``: a test is called at level
    q when its adjusted p is below q, which keeps the expected share of false calls among the
    calls below q (and, when nothing really changed, the chance of any call below q).
    """
    ps = [float(p) for p in p_values]
    if not all(0.0 <= p <= 1.0 for p in ps):
        raise ValueError("p-values must lie in [0, 1]")
    m = len(ps)
    adjusted = [1.0] * m
    running = 1.0
    for rank, i in reversed(list(enumerate(sorted(range(m), key=ps.__getitem__), start=1))):
        running = min(running, ps[i] * m / rank)
        adjusted[i] = running
    return adjusted


def log_median_ratio_sd(current: Sequence[float], baseline: Sequence[float],
                        n_resamples: int = 4000, seed: int = 0, q: float = 50.0) -> float:
    """Bootstrap standard deviation of ``log(median(current) / median(baseline))``: the
    sampling noise of the ratio of medians (the two sides resampled independently). ``q``:
    another percentile than the median (95: the tail), interpolated as :func:`percentile`."""
    cur, base = _checked(current), _checked(baseline)
    if min(cur) <= 0 or min(base) <= 0:
        raise ValueError("timings must be positive to form a ratio")
    import numpy as np

    rng = np.random.default_rng(seed)
    c, b = np.log(cur), np.log(base)
    draws = (np.percentile(rng.choice(c, (n_resamples, len(c))), q, axis=1)
             - np.percentile(rng.choice(b, (n_resamples, len(b))), q, axis=1))
    return float(np.std(draws, ddof=1))


def session_drift(medians: Sequence[float]) -> tuple[float, int]:
    """How much a runtime's level moves from session to session: the standard deviation of
    the log medians of earlier sessions, and its degrees of freedom (sessions - 1). It holds
    the sampling noise of each median as well as the drift, as a new session's median will."""
    logs = [math.log(m) for m in _checked(medians)]
    if len(logs) < 2:
        raise ValueError("the drift needs at least 2 sessions")
    mid = _fmean(logs)
    return math.sqrt(math.fsum((v - mid) ** 2 for v in logs) / (len(logs) - 1)), len(logs) - 1


@dataclass(frozen=True)
class Shift:
    """How one session's timings moved against a baseline's, judged against a floor."""

    ratio: float
    """median(current) / median(baseline): above 1 is slower."""
    ci: tuple[float, float] | None
    """The ratio's two-sided ``1 - alpha`` interval (sampling noise plus session drift);
    None with fewer than 3 runs on a side."""
    p_value: float
    """Two-sided p of "the change is within the floor": 2 x the one-sided p on the side the
    ratio fell, capped at 1. Below alpha exactly when ``ci`` lies wholly beyond the floor."""
    sampling_sd: float
    drift_sd: float
    """Log-scale standard deviations of the two sources of uncertainty."""
    drift_df: int | None
    """Degrees of freedom of ``drift_sd`` when estimated (a t test), None when assumed."""


def session_shift(current: Sequence[float], baseline: Sequence[float], *, floor: float,
                  drift_sd: float, drift_df: int | None = None, baseline_sessions: int = 1,
                  alpha: float = 0.001, seed: int = 0, q: float = 50.0) -> Shift:
    """Is ``current`` more than ``floor`` (0.10 = 10%) slower or faster than ``baseline``?

    Two sessions minutes apart on a shared machine differ by more than their runs say: the
    load, the daemons' state and the CPU clock move between sessions, so each session's median
    has its own level. ``drift_sd`` is the log-scale standard deviation of a session's median
    from session to session (its sampling noise included, as :func:`session_drift` measures
    it), so the log ratio of the current median to the mean of ``K`` pooled baseline sessions
    has sd ``drift_sd * sqrt(1 + 1/K)``; when this pair's own sampling noise (bootstrap) is
    larger, as in a session hit by a burst of load, that is used instead.

    The test is a minimum-effect test of H0 "the change is at most the floor":
    ``(|log ratio| - log(1 + floor)) / sd`` against a t distribution with ``drift_df``
    degrees of freedom when the drift was measured over ``drift_df + 1`` sessions, else (an
    assumed drift) a normal one.

    ``q``: compare that percentile instead of the median (95: the tail a user waits on one
    start in twenty); ``drift_sd`` must then be the drift of that percentile.
    """
    if not (floor >= 0 and drift_sd >= 0 and baseline_sessions >= 1 and 0 < alpha < 1
            and (drift_df is None or drift_df >= 1)):
        raise ValueError("need floor >= 0, drift_sd >= 0, drift_df >= 1, "
                         "baseline_sessions >= 1 and 0 < alpha < 1")
    cur, base = _checked(current), _checked(baseline)
    if min(cur) <= 0 or min(base) <= 0:
        raise ValueError("timings must be positive to form a ratio")
    ratio = (_median(cur) / _median(base)) if q == 50.0 else \
        percentile(cur, q) / percentile(base, q)
    if min(len(cur), len(base)) < 3:  # a bootstrap of 1 or 2 runs says nothing
        return Shift(ratio, None, 1.0, math.inf, drift_sd, drift_df)
    sampling = log_median_ratio_sd(cur, base, seed=seed, q=q)
    sd = max(sampling, drift_sd * math.sqrt(1 + 1 / baseline_sessions))
    excess = abs(math.log(ratio)) - math.log1p(floor)
    from scipy import stats as sps

    dist = sps.norm if drift_df is None else sps.t(drift_df)
    # sd 0: every run of both sessions equal and no drift, so the medians are exact
    p = min(1.0, 2 * float(dist.sf(excess / sd))) if sd > 0 else float(excess <= 0)
    half = float(dist.isf(alpha / 2)) * sd
    return Shift(ratio, (ratio * math.exp(-half), ratio * math.exp(half)), p, sampling,
                 drift_sd, drift_df)


def reliability_warnings(xs: Sequence[float], outliers: Sequence[int] | int) -> list[str]:
    """Hyperfine-style warnings telling the user why the numbers may be unreliable.

    ``outliers`` is the index list from :func:`mad_outliers` (or just its count).
    """
    values = _checked(xs)
    n = len(values)
    count = outliers if isinstance(outliers, int) else len(outliers)
    found: list[str] = []
    if count > 0:
        verb = "is a statistical outlier" if count == 1 else "are statistical outliers"
        found.append(
            f"{count} of {n} runs {verb}; rerun on a quieter machine or use more iterations"
        )
    avg = _fmean(values)
    sd = stdev(values)
    if avg > 0 and sd > 0.1 * avg:
        found.append(
            f"standard deviation ({sd:.1f} ms) is {100 * sd / avg:.0f}% of the mean "
            f"({avg:.1f} ms); results are noisy: close other programs or use more iterations"
        )
    if n >= 3:
        first, rest = values[0], values[1:]
        rest_med = _median(rest)
        rest_mad = _median([abs(x - rest_med) for x in rest])
        if first > rest_med + 5 * rest_mad and first > 2 * rest_med:
            found.append(
                f"first run took {first:.1f} ms, much slower than the rest: "
                "caches were cold; use --warmup"
            )
    return found


def slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ys over xs (memory per extra container, bytes per second of a
    profile); None with fewer than two distinct xs."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
