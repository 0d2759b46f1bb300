"""The report's statistics on synthetic data with known answers."""

import numpy as np
import pytest

from lima_eval.report.stats import (PairTable, agreement, bootstrap_weights, bradley_terry, elo, length_controlled,
                                    length_controlled_interval, longer_answer_share, row_stats)


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


def test_bootstrap_interval_is_seeded_and_covers_the_truth():
    rng = np.random.default_rng(1)
    scores = (rng.random(400) < 0.62).astype(float)
    a = row_stats(table(scores), 1, 400, seed=7)
    b = row_stats(table(scores), 1, 400, seed=7)
    c = row_stats(table(scores), 1, 400, seed=8)
    assert a.win_rate_ci[0][0] == b.win_rate_ci[0][0] and a.win_rate_ci[0][0] != c.win_rate_ci[0][0]
    lo, hi = a.win_rate_ci[0][0], a.win_rate_ci[1][0]
    assert lo < 0.62 < hi
    # About +-1.96 standard errors wide, as a normal approximation says for this n.
    assert (hi - lo) == pytest.approx(2 * 1.96 * a.standard_error[0], rel=0.15)
    w = bootstrap_weights(50, 200, seed=0)
    assert w.shape == (200, 50) and (w.sum(axis=1) == 50).all()


def test_bootstrap_resamples_prompts_not_judgments():
    """Two judgments on each prompt that always agree: resampling prompts keeps them together, so the
    interval is as wide as for one judgment per prompt (twice the data would narrow it if resampled apart)."""
    rng = np.random.default_rng(3)
    one = (rng.random(200) < 0.5).astype(float)
    single = row_stats(table(one), 1, 200, seed=0)
    doubled = row_stats(table(np.repeat(one, 2), prompts=np.repeat(np.arange(200), 2)), 1, 200, seed=0)
    width = lambda st: st.win_rate_ci[1][0] - st.win_rate_ci[0][0]  # noqa: E731
    assert width(doubled) == pytest.approx(width(single), rel=0.02)


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
    lc, longer = length_controlled(y, len_model, len_base)
    assert y.mean() > 0.65
    assert lc == pytest.approx(0.5, abs=0.04)
    assert longer > 0.6
    # The interval holds the estimate and the truth, and matches a real prompt bootstrap (refit per resample).
    lo, hi = length_controlled_interval(y, len_model, len_base, np.arange(n))
    assert lo < 0.5 < hi and lo <= lc <= hi and hi - lo < 0.1
    rng2 = np.random.default_rng(5)
    boot = []
    for _ in range(200):
        k = rng2.integers(0, n, n)
        boot.append(length_controlled(y[k], len_model[k], len_base[k])[0])
    assert np.percentile(boot, 2.5) == pytest.approx(lo, abs=0.01)
    assert np.percentile(boot, 97.5) == pytest.approx(hi, abs=0.01)
    t = PairTable(np.arange(n), np.zeros(n, dtype=int), y, np.where(y > 0.5, 1, -1).astype(np.int8), len_model,
                  len_base)
    share, s_lo, s_hi = longer_answer_share(t, 1, bootstrap_weights(n, 300))
    assert share[0] == pytest.approx(longer) and s_lo[0] < longer < s_hi[0]
    # A real quality difference survives length control.
    p2 = 1 / (1 + np.exp(-(1.0 + 1.5 * np.tanh(delta))))
    lc2, _ = length_controlled((rng.random(n) < p2).astype(float), len_model, len_base)
    assert lc2 == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.04)
    assert length_controlled(y, np.full(n, np.nan), len_base) == (None, None)


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
