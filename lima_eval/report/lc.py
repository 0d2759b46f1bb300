"""The length-controlled win rate with an instruction-difficulty term (the idea of AlpacaEval 2's LC, fitted our
own way; docs/report.md, "Length control with instruction difficulty").

When one judge compared several models with one baseline on the same prompts, each prompt's difficulty is
estimated from all of them at once:

    logit P(model m preferred on prompt i) = theta_m + phi_m * tanh(d_mi / sd_m) + gamma_i

(d: the model's answer length minus the baseline's; gamma ridge-penalised towards 0, which also ties down the
common level). Then each model is fitted alone with the difficulties as a fixed feature:

    logit P = theta_m + phi_m * tanh(d_mi / sd_m) + beta_m * gamma_i

and its length-controlled win rate is the mean over its prompts of sigmoid(theta_m + beta_m * gamma_i): the
preference predicted at equal length, prompt by prompt. A model that only wins by writing more is now compared
with the others on the same prompts, whose difficulty does not move with its length. The interval is Wald's on
that mean by the delta method, with the prompt-clustered sandwich variance of (theta, beta).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lima_eval.report.stats import LEVEL, critical

MIN_MODELS = 3  # fewer models say little about a prompt's difficulty
DIFFICULTY_PENALTY = 1.0  # ridge on each gamma_i (in units of the log-likelihood)
COEF_PENALTY = 1e-3  # a whisker of ridge on beta: keeps a separated fit finite
# Each model's length slope is shrunk towards the slope common to all models, with this weight per verdict: a
# model whose answers are almost all longer (or shorter) than the baseline's cannot then read its preference at
# equal length off a slope it alone determines (AlpacaEval regularises towards length-gamed baselines instead).
SLOPE_PENALTY = 0.1


@dataclass(frozen=True)
class ModelData:
    """One model's verdicts against the baseline: prompt index, its score in [0, 1], and the length difference."""

    prompt: np.ndarray
    score: np.ndarray
    delta: np.ndarray


@dataclass(frozen=True)
class JointLC:
    value: float
    low: float | None
    high: float | None
    models: int  # how many models the difficulties were estimated from
    coefficients: tuple[float, float, float]  # theta, phi, beta


def _features(d: ModelData) -> np.ndarray:
    sd = float(d.delta.std()) or 1.0
    return np.tanh(d.delta / sd)


def difficulties(models: list[ModelData], n_prompts: int, iterations: int = 50) -> tuple[np.ndarray, float]:
    """gamma_i per prompt and the models' common length slope, from every model's verdicts at once (Newton's
    method on the penalised likelihood; a strength per model, one length slope, one difficulty per prompt)."""
    m = len(models)
    k = m + 1 + n_prompts
    w = np.zeros(k)
    rows = [(i, d, _features(d)) for i, d in enumerate(models)]
    for _ in range(iterations):
        grad = np.zeros(k)
        hess = np.zeros((k, k))
        for i, d, x in rows:
            eta = w[i] + w[m] * x + w[m + 1 + d.prompt]
            p = 1 / (1 + np.exp(-eta))
            r, v = p - d.score, p * (1 - p)
            idx = m + 1 + d.prompt
            grad[i] += r.sum()
            grad[m] += (r * x).sum()
            np.add.at(grad, idx, r)
            hess[i, i] += v.sum()
            hess[i, m] += (v * x).sum()
            hess[m, i] = hess[i, m]
            hess[m, m] += (v * x * x).sum()
            np.add.at(hess, (idx, idx), v)
            for col_index, weights in ((i, v), (m, v * x)):
                col = np.zeros(n_prompts)
                np.add.at(col, d.prompt, weights)
                hess[col_index, m + 1:] += col
                hess[m + 1:, col_index] += col
        grad[m + 1:] += DIFFICULTY_PENALTY * w[m + 1:]
        hess[m + 1:, m + 1:] += DIFFICULTY_PENALTY * np.eye(n_prompts)
        hess[np.arange(m + 1), np.arange(m + 1)] += 1e-9
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w[m + 1:], float(w[m])


def fit_model(d: ModelData, gamma: np.ndarray, slope: float = 0.0, level: float = LEVEL,
              iterations: int = 50) -> JointLC:
    """One model's (theta, phi, beta) with the difficulties fixed, its length slope phi shrunk towards the
    models' common `slope`, and its length-controlled win rate."""
    x = _features(d)
    g = gamma[d.prompt]
    X = np.stack([np.ones_like(x), x, g], axis=1)
    pen = np.array([0.0, SLOPE_PENALTY * len(x), COEF_PENALTY])
    centre = np.array([0.0, slope, 0.0])
    w = np.zeros(3)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(X @ w)))
        grad = X.T @ (p - d.score) + pen * (w - centre)
        hess = (X * (p * (1 - p))[:, None]).T @ X + np.diag(pen) + 1e-9 * np.eye(3)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    theta, phi, beta = (float(v) for v in w)
    prompts = np.unique(d.prompt)
    at_equal = 1 / (1 + np.exp(-(theta + beta * gamma[prompts])))
    value = float(at_equal.mean())
    # Delta method: the mean's gradient in (theta, beta), the prompt-clustered sandwich covariance.
    p = 1 / (1 + np.exp(-(X @ w)))
    bread = np.linalg.inv((X * (p * (1 - p))[:, None]).T @ X + np.diag(pen) + 1e-9 * np.eye(3))
    _, cluster = np.unique(d.prompt, return_inverse=True)
    g_count = int(cluster.max()) + 1
    scores = np.zeros((g_count, 3))
    np.add.at(scores, cluster, X * (d.score - p)[:, None])
    cov = bread @ (scores.T @ scores) @ bread * (g_count / max(1, g_count - 1))
    density = at_equal * (1 - at_equal)
    grad_mean = np.array([density.mean(), 0.0, (density * gamma[prompts]).mean()])
    sd = math.sqrt(max(float(grad_mean @ cov @ grad_mean), 0.0))
    if g_count < 2:
        return JointLC(value, None, None, 0, (theta, phi, beta))
    half = critical(level, g_count - 1) * sd
    return JointLC(value, max(0.0, value - half), min(1.0, value + half), 0, (theta, phi, beta))


def joint_length_controlled(models: dict[str, ModelData], n_prompts: int,
                            level: float = LEVEL) -> dict[str, JointLC]:
    """Every model's length-controlled win rate with instruction difficulty ({} when fewer than MIN_MODELS)."""
    if len(models) < MIN_MODELS:
        return {}
    names = list(models)
    gamma, slope = difficulties([models[n] for n in names], n_prompts)
    out = {}
    for name in names:
        r = fit_model(models[name], gamma, slope, level)
        out[name] = JointLC(r.value, r.low, r.high, len(names), r.coefficients)
    return out


KEY = "length_controlled_difficulty_win_rate"


def row_data(table: Any, r: int, prompt_map: np.ndarray | None = None) -> ModelData | None:
    """Row r's verdicts of a report's PairTable as ModelData (prompt indices mapped through `prompt_map`, e.g.
    to prompts shared across runs); None without a verdict that has both answers' lengths."""
    mask = (table.row == r) & np.isfinite(table.len_model) & np.isfinite(table.len_base)
    if not mask.any():
        return None
    prompt = table.prompt[mask] if prompt_map is None else prompt_map[table.prompt[mask]]
    return ModelData(prompt, table.score[mask], table.len_model[mask] - table.len_base[mask])


def fill(rows: list[dict], data: dict[int, ModelData], n_prompts: int, level: float = LEVEL) -> None:
    """Set KEY (with its interval and `lc_difficulty_models`) on rows[i] for every i in `data`, all fitted
    together (they share a judge and a baseline), or n/a with the reason when they are too few."""
    fitted = joint_length_controlled(data, max(1, n_prompts), level) if len(data) >= MIN_MODELS else {}  # type: ignore[arg-type]
    for i in data:
        row, got = rows[i], fitted.get(i)  # type: ignore[call-overload]
        if got is None:
            reason = f"needs {MIN_MODELS} models judged against this baseline with answer lengths (has {len(data)})"
            row.update({KEY: None, KEY + "_ci_low": None, KEY + "_ci_high": None, KEY + "_na": reason,
                        "lc_difficulty_models": len(data)})
            continue
        row.update({KEY: round(got.value, 6), KEY + "_ci_low": None if got.low is None else round(got.low, 6),
                    KEY + "_ci_high": None if got.high is None else round(got.high, 6), KEY + "_na": None,
                    "lc_difficulty_models": got.models})


def add_difficulty_lc(rows: list[dict], keys: list[tuple[str, str, str]], table: Any, n_prompts: int,
                      level: float = LEVEL) -> None:
    """Each summary row's instruction-difficulty LC, fitted per (judge, baseline) over every model that judge
    compared with that baseline in the run."""
    groups: dict[tuple[str, str], list[int]] = {}
    for r, (_, baseline, judge) in enumerate(keys):
        groups.setdefault((judge, baseline), []).append(r)
    for members in groups.values():
        data = {r: d for r in members if (d := row_data(table, r)) is not None}
        fill(rows, data, n_prompts, level)
        for r in members:
            if r not in data:
                rows[r].update({KEY: None, KEY + "_ci_low": None, KEY + "_ci_high": None,
                                KEY + "_na": "answer lengths unknown", "lc_difficulty_models": len(data)})
