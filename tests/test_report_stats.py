"""The report's statistics on synthetic data with known answers."""

import numpy as np
import pytest

from lima_eval.report.stats import (
    PairTable,
    agreement,
    bradley_terry,
    bradley_terry_intervals,
    clustered_rates,
    critical,
    elo,
    length_controlled,
    longer_answer_share,
    row_stats,
    wilson,
)


def table(scores, prompts=None, rows=None):
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    verdict = np.where(scores > 0.5, 1, np.where(scores < 0.5, -1, 0)).astype(np.int8)
    return PairTable(np.arange(n) if prompts is None else np.asarray(prompts),
                     np.zeros(n, dtype=int) if rows is None else np.asarray(rows), scores, verdict,
                     np.full(n, np.nan), np.full(n, np.nan))


def test_win_rate_standard_error_and_discrete_rate():
    st = row_stats(table([1, 1, 0.5, 0, 1]), 1, 5)
    assert st.win_rate[0] == pytest.approx(0.7)
    assert st.standard_error[0] == pytest.approx(np.std([1, 1, 0.5, 0, 1], ddof=1) / np.sqrt(5))
    assert st.discrete_win_rate[0] == pytest.approx(0.7) and st.equal_or_better[0] == pytest.approx(0.8)
    assert (st.wins[0], st.ties[0], st.losses[0]) == (3, 1, 1)


def test_win_rate_interval_is_wilsons_and_about_two_standard_errors_wide():
    rng = np.random.default_rng(1)
    scores = (rng.random(400) < 0.62).astype(float)
    st = row_stats(table(scores), 1, 400)
    lo, hi = st.win_rate_ci[0][0], st.win_rate_ci[1][0]
    assert lo < st.win_rate[0] < hi and lo < 0.62 < hi
    # One 0/1 verdict per prompt: Wilson's interval on n with t (n - 1 degrees of freedom), about +-1.97
    # standard errors at this n.
    assert (lo, hi) == pytest.approx(tuple(x[0] for x in wilson(np.array([scores.mean()]), np.array([400.0]),
                                                                critical(0.95, 399))))
    assert (hi - lo) == pytest.approx(2 * 1.97 * st.standard_error[0], rel=0.05)
    # Five wins out of five: not the degenerate [1, 1] of a percentile bootstrap, and not significant (the
    # exact two-sided binomial test gives p = 2 / 32).
    five = row_stats(table([1, 1, 1, 1, 1]), 1, 5)
    assert five.win_rate_ci[1][0] == 1.0 and five.win_rate_ci[0][0] < 0.5


def test_interval_clusters_by_prompt():
    """Two judgments on each prompt that always agree: the prompt is the unit, so the interval is as wide as
    for one judgment per prompt (twice the data would narrow it if counted apart)."""
    rng = np.random.default_rng(3)
    one = (rng.random(200) < 0.5).astype(float)
    single = row_stats(table(one), 1, 200)
    doubled = row_stats(table(np.repeat(one, 2), prompts=np.repeat(np.arange(200), 2)), 1, 200)
    width = lambda st: st.win_rate_ci[1][0] - st.win_rate_ci[0][0]
    assert width(doubled) == pytest.approx(width(single), rel=0.02)


@pytest.mark.parametrize("df,expected", [(1, 12.7062), (4, 2.7764), (29, 2.0452), (1000, 1.9623)])
def test_t_quantiles(df, expected):
    assert critical(0.95, df) == pytest.approx(expected, abs=1e-4)
    assert critical(0.95) == pytest.approx(1.959964, abs=1e-6)


def test_clustered_rates_na_and_ties():
    """One prompt: no interval. Ties (values of 0.5): the effective n is larger than n (a tie varies less
    than a win or a loss), estimated with the G / (G - 1) factor."""
    rate, lo, hi = clustered_rates(np.array([[1.0]]), np.array([[1.0]]), np.array([True]))
    assert rate[0] == 1.0 and np.isnan(lo[0]) and np.isnan(hi[0])
    s = np.array([[1.0], [0.5], [0.0], [0.5], [1.0], [0.5]])
    rate, lo, hi = clustered_rates(s, np.ones_like(s), np.array([False]))
    n_eff = rate[0] * (1 - rate[0]) / (s.var(ddof=1) / s.size)
    assert n_eff > s.size
    assert (lo[0], hi[0]) == pytest.approx(tuple(x[0] for x in wilson(rate, np.array([n_eff]), critical(0.95, 5))))


def test_bradley_terry_recovers_known_strengths():
    strength = np.array([0.0, 0.5, 1.0, 2.0])
    p = 1 / (1 + np.exp(strength[None, :] - strength[:, None]))  # p[i, j] = P(i beats j)
    games = 10000
    wins = p * games
    np.fill_diagonal(wins, 0)
    fitted = bradley_terry(wins, prior=0.0)
    assert fitted - fitted[0] == pytest.approx(strength - strength[0], abs=1e-3)
    ratings = elo(fitted, anchor=0)
    assert ratings[0] == 1000 and ratings[3] == pytest.approx(1000 + 400 / np.log(10) * 2.0, abs=0.5)
    # Vectorised over leading axes: a batch of the same matrix gives the same answer.
    batch = bradley_terry(np.stack([wins, wins]), prior=0.0)
    assert batch[1] - batch[1][0] == pytest.approx(fitted - fitted[0], abs=1e-6)


def test_a_model_that_never_wins_still_gets_a_finite_rating():
    wins = np.array([[0, 0], [10, 0]], dtype=float)
    r = elo(bradley_terry(wins), anchor=1)
    assert np.isfinite(r).all() and r[0] < r[1] - 400


def test_bradley_terry_intervals():
    """Two models: the interval is the empirical-logit one (log odds of (won + 0.5) / (lost + 0.5)), wide at
    n = 5 and holding zero after five wins; a model no judgment links to the anchor gets none."""
    won = np.array([[1.0], [1.0], [1.0], [1.0], [1.0]])
    beta, lo, hi = bradley_terry_intervals(won, np.ones_like(won), np.array([[1, 0]]), 2, anchor=0)
    assert beta[0] == lo[0] == hi[0] == 0.0
    assert beta[1] == pytest.approx(np.log(5.5 / 0.5), abs=1e-6)
    assert beta[1] - lo[1] == pytest.approx(critical() * np.sqrt(1 / 5.5 + 1 / 0.5), rel=1e-3) and lo[1] < 0
    # Models 2 and 3 only met each other.
    won = np.array([[0.5, 1.0], [1.0, 0.0], [0.0, 0.5]])
    beta, lo, hi = bradley_terry_intervals(won, np.ones_like(won), np.array([[1, 0], [2, 3]]), 4, anchor=0)
    assert np.isfinite([beta[1], lo[1], hi[1]]).all() and np.isnan(beta[2:]).all() and np.isnan(lo[2:]).all()


def test_length_control_removes_a_pure_length_preference():
    """A judge that only prefers the longer answer: the raw win rate is high, the length-controlled one
    (read at zero length difference) is back near one half."""
    rng = np.random.default_rng(0)
    n = 4000
    len_base = rng.normal(1000, 200, n)
    len_model = len_base + rng.normal(300, 300, n)  # the model writes longer answers
    delta = (len_model - len_base) / (len_model - len_base).std()
    p = 1 / (1 + np.exp(-(0.0 + 1.5 * np.tanh(delta))))
    y = (rng.random(n) < p).astype(float)
    lc = length_controlled(y, len_model, len_base, np.arange(n))
    assert y.mean() > 0.65 and lc.na is None
    assert lc.value == pytest.approx(0.5, abs=0.04)
    # The interval holds the estimate and the truth, and matches a real prompt bootstrap (refit per resample).
    assert lc.low < 0.5 < lc.high and lc.low <= lc.value <= lc.high and lc.high - lc.low < 0.1
    rng2 = np.random.default_rng(5)
    boot = []
    for _ in range(200):
        k = rng2.integers(0, n, n)
        boot.append(length_controlled(y[k], len_model[k], len_base[k], np.arange(n)).value)
    assert np.percentile(boot, 2.5) == pytest.approx(lc.low, abs=0.01)
    assert np.percentile(boot, 97.5) == pytest.approx(lc.high, abs=0.01)
    t = PairTable(np.arange(n), np.zeros(n, dtype=int), y, np.where(y > 0.5, 1, -1).astype(np.int8), len_model,
                  len_base)
    share, s_lo, s_hi = longer_answer_share(t, 1, n)
    assert share[0] > 0.6 and s_lo[0] < share[0] < s_hi[0]
    # A real quality difference survives length control.
    p2 = 1 / (1 + np.exp(-(1.0 + 1.5 * np.tanh(delta))))
    lc2 = length_controlled((rng.random(n) < p2).astype(float), len_model, len_base, np.arange(n))
    assert lc2.value == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.04)


@pytest.mark.parametrize("shift,scores,reason", [
    (None, None, "answer lengths unknown"),
    (+1, None, "too little length overlap: the model's answer is longer on 40 and shorter on 0 of 40 prompts"),
    (0, np.full(40, 0.5), "every score is the same"),
    (0, "by length", "the verdicts split exactly by answer length"),
])
def test_length_control_says_why_it_has_no_estimate(shift, scores, reason):
    n = 40
    len_base = np.linspace(500, 1500, n)
    len_model = np.full(n, np.nan) if shift is None else len_base + np.linspace(-300, 300, n) + 400 * shift
    y = (np.arange(n) % 3 == 0).astype(float) if scores is None else (
        (len_model > len_base).astype(float) if isinstance(scores, str) else scores)
    lc = length_controlled(y, len_model, len_base, np.arange(n))
    assert lc.value is None and lc.low is None and lc.na is not None and lc.na.startswith(reason)


@pytest.mark.parametrize("x,y,expected", [
    ([1, -1, 0, 1], [1, -1, 0, 1], {"tie_discounted": 1.0, "with_ties": 1.0, "without_ties": 1.0, "kappa": 1.0}),
    ([1, 1, 0, -1], [1, 0, 1, 1], {"tie_discounted": (1 + 0.5 + 0.5 + 0) / 4, "with_ties": 0.25,
                                   "without_ties": 0.5}),
    # Cohen's kappa by hand: po = 0.5, pe = 0.5*0.5 + 0.5*0.5 = 0.5 over the two classes used -> 0.
    ([1, 1, -1, -1], [1, -1, 1, -1], {"with_ties": 0.5, "kappa": 0.0}),
])
def test_agreement_figures(x, y, expected):
    got = agreement(np.array(x), np.array(y))
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)


def test_every_leaderboard_bar_names_its_baseline_and_runs_only_where_needed():
    from lima_eval.report.plots import bar_labels

    rows = [{"model": "sft", "baseline": "base", "run": "r1", "n": 30},
            {"model": "sft", "baseline": "smol", "run": "r1", "n": 30},
            {"model": "sft", "baseline": "base", "run": "r2", "n": 12}]
    assert bar_labels(rows) == ["sft vs base [r1] (n=30)", "sft vs smol (n=30)", "sft vs base [r2] (n=12)"]
