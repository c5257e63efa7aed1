"""Tests for forge_desktop.bench.stats against known answers from numpy, scipy and stdlib."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from forge_desktop.bench import stats as S

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = [12.5, 10.1, 11.7, 13.9, 10.4, 12.2, 11.1, 15.8, 10.9, 12.0, 11.4]


def _normal(seed: int, loc: float, scale: float = 5.0, n: int = 20) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).normal(loc, scale, n)]


# --- descriptive statistics -------------------------------------------------------------


def test_median_mean_stdev_match_stdlib_and_numpy() -> None:
    assert S.median(SAMPLE) == pytest.approx(statistics.median(SAMPLE))
    assert S.median(SAMPLE[:-1]) == pytest.approx(float(np.median(SAMPLE[:-1])))
    assert S.mean(SAMPLE) == pytest.approx(float(np.mean(SAMPLE)))
    assert S.stdev(SAMPLE) == pytest.approx(float(np.std(SAMPLE, ddof=1)))


@pytest.mark.parametrize("q", [0, 5, 25, 50, 62.5, 90, 95, 99, 100])
def test_percentile_matches_numpy_linear(q: float) -> None:
    assert S.percentile(SAMPLE, q) == pytest.approx(float(np.percentile(SAMPLE, q)))
    assert S.percentile(SAMPLE[:4], q) == pytest.approx(float(np.percentile(SAMPLE[:4], q)))


def test_percentile_rejects_out_of_range_q() -> None:
    with pytest.raises(ValueError):
        S.percentile(SAMPLE, 101)
    with pytest.raises(ValueError):
        S.percentile(SAMPLE, -1)


# --- outliers ---------------------------------------------------------------------------


def test_mad_outliers_finds_planted_outlier() -> None:
    xs = [100.2, 99.1, 101.3, 100.8, 98.7, 100.0, 180.0, 99.6, 100.9, 101.1, 99.4, 100.5]
    assert S.mad_outliers(xs) == [6]


def test_mad_outliers_none_in_clean_sample() -> None:
    assert S.mad_outliers(SAMPLE[:-4]) == []


def test_mad_outliers_falls_back_to_mean_absolute_deviation_when_mad_is_zero() -> None:
    # More than half the values equal the median, so MAD is 0.
    xs = [100.0] * 8 + [101.0, 150.0]
    assert S.mad_outliers(xs) == [9]


def test_mad_outliers_all_equal_has_none() -> None:
    assert S.mad_outliers([5.0] * 6) == []


# --- bootstrap CI of the median ---------------------------------------------------------


def test_bootstrap_median_ci_contains_median_and_is_deterministic() -> None:
    xs = _normal(7, 100.0)
    ci = S.bootstrap_median_ci(xs, seed=42)
    assert ci[0] <= S.median(xs) <= ci[1]
    assert min(xs) <= ci[0] < ci[1] <= max(xs)
    assert S.bootstrap_median_ci(xs, seed=42) == ci
    assert S.bootstrap_median_ci(xs, seed=43) != ci


def test_bootstrap_median_ci_matches_scipy_bca() -> None:
    xs = [float(x) for x in np.random.default_rng(3).lognormal(4.0, 0.6, 25)]
    res = sps.bootstrap(
        (xs,), np.median, n_resamples=2000, method="BCa", rng=np.random.default_rng(0)
    )
    expected = (float(res.confidence_interval.low), float(res.confidence_interval.high))
    assert S.bootstrap_median_ci(xs, seed=0) == pytest.approx(expected)


def test_bootstrap_median_ci_small_or_constant_returns_range() -> None:
    assert S.bootstrap_median_ci([4.0]) == (4.0, 4.0)
    assert S.bootstrap_median_ci([5.0, 3.0]) == (3.0, 5.0)
    assert S.bootstrap_median_ci([7.0] * 10) == (7.0, 7.0)


def test_bootstrap_median_ci_heavily_tied_data_still_works() -> None:
    # BCa tends to fail/warn on such data; the percentile fallback must still answer.
    xs = [10.0] * 9 + [11.0, 12.0]
    lo, hi = S.bootstrap_median_ci(xs)
    assert lo <= 10.0 <= hi


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=1e5), min_size=1, max_size=25))
def test_property_ci_brackets_median(xs: list[float]) -> None:
    lo, hi = S.bootstrap_median_ci(xs, n_resamples=300)
    assert min(xs) <= lo <= S.median(xs) <= hi <= max(xs)


# --- summary ----------------------------------------------------------------------------


def test_summarize_fields_and_to_dict() -> None:
    s = S.summarize(SAMPLE)
    assert s.n == len(SAMPLE)
    assert s.median_ms == pytest.approx(float(np.median(SAMPLE)))
    assert s.mean_ms == pytest.approx(float(np.mean(SAMPLE)))
    assert s.stdev_ms == pytest.approx(float(np.std(SAMPLE, ddof=1)))
    assert (s.min_ms, s.max_ms) == (min(SAMPLE), max(SAMPLE))
    assert s.p95_ms == pytest.approx(float(np.percentile(SAMPLE, 95)))
    assert s.outliers == len(S.mad_outliers(SAMPLE))
    d = s.to_dict()
    assert list(d) == [
        "n",
        "median_ms",
        "mean_ms",
        "stdev_ms",
        "min_ms",
        "max_ms",
        "p95_ms",
        "ci95_ms",
        "outliers",
    ]
    assert d["ci95_ms"] == list(s.ci95_ms)
    import json

    assert json.loads(json.dumps(d)) == d
    with pytest.raises(AttributeError):
        s.n = 3  # type: ignore[misc]


def test_summarize_single_sample() -> None:
    s = S.summarize([42.0])
    assert (s.n, s.median_ms, s.mean_ms, s.stdev_ms, s.p95_ms) == (1, 42.0, 42.0, 0.0, 42.0)
    assert s.ci95_ms == (42.0, 42.0)
    assert s.outliers == 0


def test_summarize_equal_samples() -> None:
    s = S.summarize([3.0] * 5)
    assert (s.stdev_ms, s.ci95_ms, s.outliers) == (0.0, (3.0, 3.0), 0)


@pytest.mark.parametrize(
    "fn",
    [S.median, S.mean, S.stdev, S.summarize, S.mad_outliers, S.bootstrap_median_ci],
)
def test_empty_input_raises(fn: object) -> None:
    with pytest.raises(ValueError):
        fn([])  # type: ignore[operator]


def test_empty_input_raises_for_two_sample_functions() -> None:
    with pytest.raises(ValueError):
        S.mann_whitney_p([], [1.0])
    with pytest.raises(ValueError):
        S.ratio_of_medians_ci([1.0], [])


# --- comparisons ------------------------------------------------------------------------


def test_mann_whitney_matches_scipy() -> None:
    a = _normal(11, 100.0)
    b = _normal(12, 103.0)
    expected = sps.mannwhitneyu(a, b, alternative="two-sided", method="auto").pvalue
    assert S.mann_whitney_p(a, b) == pytest.approx(float(expected))
    small_a, small_b = [1.0, 2.0, 3.5, 4.0], [2.5, 5.0, 6.0, 7.0, 8.0]
    expected = sps.mannwhitneyu(small_a, small_b, alternative="two-sided").pvalue
    assert S.mann_whitney_p(small_a, small_b) == pytest.approx(float(expected))


def test_mann_whitney_identical_constants_is_one() -> None:
    assert S.mann_whitney_p([5.0] * 6, [5.0] * 6) == 1.0


def test_shifted_distribution_is_significant_both_ways() -> None:
    fast = _normal(1, 100.0)
    slow = _normal(2, 130.0)
    p = S.mann_whitney_p(fast, slow)
    assert p < 0.001

    ratio, ci = S.ratio_of_medians_ci(fast, slow)
    assert ratio == pytest.approx(S.median(slow) / S.median(fast))
    assert 1.0 < ci[0] <= ratio <= ci[1]
    assert S.verdict(ratio, ci, p) == "faster"

    ratio, ci = S.ratio_of_medians_ci(slow, fast)
    assert ci[0] <= ratio <= ci[1] < 1.0
    assert S.verdict(ratio, ci, p) == "slower"

    assert S.ratio_of_medians_ci(fast, slow, seed=5) == S.ratio_of_medians_ci(fast, slow, seed=5)


def test_same_distribution_is_not_significant() -> None:
    a = _normal(21, 100.0)
    b = _normal(22, 100.0)
    p = S.mann_whitney_p(a, b)
    ratio, ci = S.ratio_of_medians_ci(a, b)
    assert p > 0.05
    assert ci[0] <= 1.0 <= ci[1]
    assert S.verdict(ratio, ci, p) == "no significant difference"


def test_ratio_small_samples_use_extreme_ratios() -> None:
    ratio, ci = S.ratio_of_medians_ci([10.0, 20.0], [30.0, 40.0])
    assert ratio == pytest.approx(35.0 / 15.0)
    assert ci == pytest.approx((30.0 / 20.0, 40.0 / 10.0))


def test_ratio_rejects_non_positive_timings() -> None:
    with pytest.raises(ValueError):
        S.ratio_of_medians_ci([0.0, 1.0, 2.0], [1.0, 2.0, 3.0])


def test_verdict_rules() -> None:
    assert S.verdict(1.5, (1.2, 1.8), 0.01) == "faster"
    assert S.verdict(1.5, (1.2, 1.8), 0.2) == "no significant difference"
    assert S.verdict(1.5, (0.9, 1.8), 0.01) == "no significant difference"
    assert S.verdict(1.5, (1.2, 1.8), 0.01, min_factor=2.0) == "no significant difference"
    assert S.verdict(0.5, (0.4, 0.6), 0.01) == "slower"
    assert S.verdict(0.5, (0.4, 0.6), 0.01, min_factor=2.0) == "slower"
    assert S.verdict(0.5, (0.4, 0.6), 0.01, min_factor=2.5) == "no significant difference"


# --- regression checks: Benjamini-Hochberg and the session-shift rule -------------------


def test_benjamini_hochberg_by_hand() -> None:
    # sorted: 0.005 (rank 1), 0.01 (2), 0.03 (3), 0.04 (4); p * 4 / rank = 0.02, 0.02, 0.04,
    # 0.04; the running minimum from the largest rank down leaves them as they are
    assert S.benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx(
        [0.02, 0.04, 0.04, 0.02])
    # step-up: 0.03 at rank 2 of 2 stays 0.03 and pulls 0.02 * 2 / 1 = 0.04 down to it
    assert S.benjamini_hochberg([0.02, 0.03]) == pytest.approx([0.03, 0.03])
    assert S.benjamini_hochberg([0.5, 0.9, 1.0]) == pytest.approx([1.0, 1.0, 1.0])
    assert S.benjamini_hochberg([0.0004]) == [0.0004]
    assert S.benjamini_hochberg([]) == []
    with pytest.raises(ValueError):
        S.benjamini_hochberg([0.5, 1.5])


@pytest.mark.skipif(not hasattr(sps, "false_discovery_control"),
                    reason="scipy < 1.11 has no false_discovery_control; the values by hand "
                           "above still check it")
def test_benjamini_hochberg_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    for m in (1, 2, 3, 7, 40):
        ps = list(rng.uniform(0, 1, m) ** 3)
        expected = sps.false_discovery_control(ps, method="bh")
        assert S.benjamini_hochberg(ps) == pytest.approx(list(expected), rel=1e-12)


def test_session_drift_is_the_sd_of_log_medians() -> None:
    medians = [52.0, 53.5, 52.8, 54.0, 53.1]
    sd, df = S.session_drift(medians)
    assert df == 4 and sd == pytest.approx(float(np.std(np.log(medians), ddof=1)))
    with pytest.raises(ValueError):
        S.session_drift([52.0])


def _session(seed: int, median: float, log_sd: float, n: int = 20) -> list[float]:
    """Timings as sessions give them: log-normal around a level."""
    return [float(x) for x in median * np.exp(np.random.default_rng(seed).normal(0, log_sd, n))]


def _shift(cur: list[float], base: list[float], drift_sd: float,
           drift_df: int | None = 9) -> S.Shift:
    return S.session_shift(cur, base, floor=0.10, drift_sd=drift_sd, drift_df=drift_df)


def test_identical_sessions_are_below_the_floor() -> None:
    shift = _shift(_session(1, 100, 0.05), _session(2, 100, 0.05), drift_sd=0.02)
    assert 0.95 < shift.ratio < 1.05 and shift.p_value == 1.0
    assert shift.ci is not None and shift.ci[0] < 1 < shift.ci[1]


def test_a_5_percent_shift_is_clear_but_below_the_floor() -> None:
    cur, base = _session(3, 105, 0.01, 40), _session(4, 100, 0.01, 40)
    assert S.mann_whitney_p(cur, base) < 1e-6  # a rank test alone would call it
    shift = _shift(cur, base, drift_sd=0.005)
    assert 1.04 < shift.ratio < 1.06 and shift.p_value == 1.0


def test_a_30_percent_shift_beyond_the_drift_is_significant() -> None:
    shift = _shift(_session(5, 130, 0.03), _session(6, 100, 0.03), drift_sd=0.01)
    assert 1.25 < shift.ratio < 1.35 and shift.p_value < 0.001
    assert shift.ci is not None and shift.ci[0] > 1.10  # the whole interval beyond the floor
    faster = _shift(_session(6, 100, 0.03), _session(5, 130, 0.03), drift_sd=0.01)
    assert faster.ratio < 1 / 1.25 and faster.p_value < 0.001


def test_drift_between_sessions_is_not_a_regression() -> None:
    """Two sessions of one runtime 25% apart, each tight: the samples alone would call it,
    but earlier sessions show the level moving by ~12% (sd) from session to session."""
    cur, base = _session(7, 125, 0.03), _session(8, 100, 0.03)
    assert S.mann_whitney_p(cur, base) < 1e-6
    assert _shift(cur, base, drift_sd=0.0).p_value < 1e-4  # no drift allowed: called
    history = [100 * float(np.exp(x)) for x in np.random.default_rng(9).normal(0, 0.12, 10)]
    drift_sd, df = S.session_drift(history)
    shift = _shift(cur, base, drift_sd, df)
    assert shift.p_value > 0.01 and shift.ci is not None and shift.ci[0] < 1.10
    # the assumed drift when there is no history (30%) holds it back too
    assert _shift(cur, base, float(np.log(1.3)), None).p_value > 0.05
    # pooling 5 baseline sessions narrows the drift term: sqrt(1 + 1/5) instead of sqrt(2)
    pooled = S.session_shift(cur, base, floor=0.1, drift_sd=drift_sd, drift_df=df,
                             baseline_sessions=5)
    assert pooled.p_value < shift.p_value


def test_a_noisy_session_widens_the_interval_beyond_the_drift() -> None:
    calm = _shift(_session(10, 130, 0.02), _session(11, 100, 0.02), drift_sd=0.01)
    bursty = _shift(_session(10, 130, 0.4), _session(11, 100, 0.02), drift_sd=0.01)
    assert bursty.sampling_sd > 0.01 * np.sqrt(2) > calm.sampling_sd
    assert calm.ci is not None and bursty.ci is not None
    assert bursty.ci[1] / bursty.ci[0] > calm.ci[1] / calm.ci[0]


def test_the_interval_and_p_agree_at_alpha() -> None:
    """p < alpha exactly when the (1 - alpha) interval lies wholly beyond the floor."""
    for seed, level in enumerate((100, 108, 112, 118, 125, 140)):
        shift = S.session_shift(_session(seed, level, 0.05), _session(50 + seed, 100, 0.05),
                                floor=0.10, drift_sd=0.03, drift_df=6, alpha=0.001)
        assert shift.ci is not None
        assert (shift.p_value < 0.001) == (shift.ci[0] > 1.10), (level, shift)


def test_session_shift_edge_cases() -> None:
    few = S.session_shift([130.0, 131.0], [100.0, 101.0], floor=0.1, drift_sd=0.0)
    assert few.ci is None and few.p_value == 1.0  # two runs a side: no evidence
    exact = S.session_shift([130.0] * 5, [100.0] * 5, floor=0.1, drift_sd=0.0)
    assert exact.p_value == 0.0 and exact.ci == pytest.approx((1.3, 1.3))
    assert S.session_shift([105.0] * 5, [100.0] * 5, floor=0.1, drift_sd=0.0).p_value == 1.0
    with pytest.raises(ValueError):
        S.session_shift([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], floor=0.1, drift_sd=0.0)
    with pytest.raises(ValueError):
        S.session_shift([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], floor=0.1, drift_sd=-1.0)


def test_false_alarms_and_power_of_the_rule_on_simulated_sessions() -> None:
    """The rule on sessions drawn from its own model: each session's level drifts (log sd
    0.08), runs are log-normal (sd 0.05, a sleep-bound runtime's), 20 runs a session, the
    drift measured over the 10 earlier sessions, the previous session the baseline. 400
    identical pairs: no false alarm at alpha 0.001. 30% slower against a 0.5% drift (a
    `sleep 1` runtime's), the previous 5 sessions pooled: all 100 called."""
    rng = np.random.default_rng(2026)

    def session(level: float, drift: float) -> list[float]:
        return [float(x) for x in level * np.exp(rng.normal(0, drift) + rng.normal(0, 0.05, 20))]

    false_alarms = 0
    for _ in range(400):
        earlier = [session(100, 0.08) for _ in range(10)]
        drift_sd, df = S.session_drift([S.median(s) for s in earlier])
        shift = _shift(session(100, 0.08), earlier[0], drift_sd, df)
        false_alarms += shift.ratio > 1 and shift.p_value < 0.001
    assert false_alarms == 0
    called = 0
    for _ in range(100):
        earlier = [session(100, 0.005) for _ in range(10)]
        drift_sd, df = S.session_drift([S.median(s) for s in earlier])
        pooled = [x for s in earlier[:5] for x in s]
        called += S.session_shift(session(130, 0.005), pooled, floor=0.10, drift_sd=drift_sd,
                                  drift_df=df, baseline_sessions=5).p_value < 0.001
    assert called == 100


# --- warnings ---------------------------------------------------------------------------


def test_reliability_warnings_quiet_sample_has_none() -> None:
    xs = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2]
    assert S.reliability_warnings(xs, S.mad_outliers(xs)) == []


def test_reliability_warnings_cold_first_run() -> None:
    xs = [300.0, 100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 100.1, 99.8, 100.3]
    out = S.reliability_warnings(xs, S.mad_outliers(xs))
    assert "1 of 10 runs is a statistical outlier" in out[0]
    assert any("standard deviation" in w for w in out)
    assert out[-1] == (
        "first run took 300.0 ms, much slower than the rest: caches were cold; use --warmup"
    )


def test_reliability_warnings_outlier_count_and_noise() -> None:
    xs = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 100.1, 200.0, 210.0, 220.0]
    out = S.reliability_warnings(xs, 3)
    assert out[0] == (
        "3 of 10 runs are statistical outliers; rerun on a quieter machine or use more iterations"
    )
    assert any("standard deviation" in w for w in out)
    assert not any("first run" in w for w in out)


# --- import cost ------------------------------------------------------------------------


def test_import_does_not_pull_in_scipy() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    code = (
        "import sys, forge_desktop.bench.stats; "
        "assert 'scipy' not in sys.modules, 'scipy imported'; "
        "assert 'numpy' not in sys.modules, 'numpy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO_ROOT)
