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
    method on the penalised likelihood; a strength per model, one length slope, one difficulty per prompt).

    The Hessian's prompt block is diagonal (a verdict touches one prompt), so each Newton step is solved through
    the Schur complement of that block: a system of size models + 1, in time linear in prompts and verdicts."""
    m = len(models)
    # Every model's verdicts in one set of arrays: which model, which prompt, the score and the length feature.
    model = np.repeat(np.arange(m), [len(d.prompt) for d in models])
    prompt = np.concatenate([d.prompt for d in models]).astype(np.int64)
    score = np.concatenate([d.score for d in models])
    x = np.concatenate([_features(d) for d in models])
    cell = model * n_prompts + prompt  # (model, prompt), for the coupling of theta with the difficulties
    coef = np.zeros(m + 1)  # theta per model, then the common slope
    gamma = np.zeros(n_prompts)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(coef[model] + coef[m] * x + gamma[prompt])))
        r, v = p - score, p * (1 - p)
        vx = v * x
        g_coef = np.append(np.bincount(model, weights=r, minlength=m), (r * x).sum())  # gradient in (theta, slope)
        g_gamma = np.bincount(prompt, weights=r, minlength=n_prompts) + DIFFICULTY_PENALTY * gamma
        a = np.zeros((m + 1, m + 1))  # Hessian block of (theta, slope)
        a[np.arange(m), np.arange(m)] = np.bincount(model, weights=v, minlength=m)
        a[:m, m] = a[m, :m] = np.bincount(model, weights=vx, minlength=m)
        a[m, m] = (vx * x).sum()
        a[np.arange(m + 1), np.arange(m + 1)] += 1e-9
        b = np.empty((m + 1, n_prompts))  # its coupling with the difficulties
        b[:m] = np.bincount(cell, weights=v, minlength=m * n_prompts).reshape(m, n_prompts)
        b[m] = np.bincount(prompt, weights=vx, minlength=n_prompts)
        diag = b[:m].sum(axis=0) + DIFFICULTY_PENALTY  # the difficulties' block, diagonal
        b_scaled = b / diag
        # einsum, not `@`: a matrix product this size wakes OpenBLAS's threads, whose spinning measured the fit
        # 5x slower on a busy 2-core machine.
        schur = a - np.einsum("ip,jp->ij", b_scaled, b)
        step_coef = np.linalg.solve(schur, g_coef - np.einsum("ip,p->i", b_scaled, g_gamma))
        step_gamma = (g_gamma - np.einsum("ip,i->p", b, step_coef)) / diag
        coef -= step_coef
        gamma -= step_gamma
        if max(float(np.abs(step_coef).max()), float(np.abs(step_gamma).max(initial=0.0))) < 1e-8:
            break
    return gamma, float(coef[m])


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
    # The prompts this model was judged on, and each verdict's cluster among them, by counting (linear time).
    seen = np.bincount(d.prompt, minlength=len(gamma)) > 0
    prompts = np.flatnonzero(seen)
    cluster = (np.cumsum(seen) - 1)[d.prompt]
    at_equal = 1 / (1 + np.exp(-(theta + beta * gamma[prompts])))
    value = float(at_equal.mean())
    # Delta method: the mean's gradient in (theta, beta), the prompt-clustered sandwich covariance.
    p = 1 / (1 + np.exp(-(X @ w)))
    bread = np.linalg.inv((X * (p * (1 - p))[:, None]).T @ X + np.diag(pen) + 1e-9 * np.eye(3))
    g_count = len(prompts)
    residual = d.score - p
    scores = np.stack([np.bincount(cluster, weights=X[:, j] * residual, minlength=g_count) for j in range(3)], axis=1)
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


def rows_data(table: Any, n_rows: int) -> dict[int, ModelData]:
    """row_data for every row r < n_rows at once (one pass over the table, not one per row); rows without a
    verdict that has both answers' lengths are left out."""
    known = np.flatnonzero(np.isfinite(table.len_model) & np.isfinite(table.len_base))
    known = known[np.argsort(table.row[known], kind="stable")]  # grouped by row, the table's order within each
    bounds = np.searchsorted(table.row[known], np.arange(n_rows + 1))
    out = {}
    for r in range(n_rows):
        at = known[bounds[r]:bounds[r + 1]]
        if len(at):
            out[r] = ModelData(table.prompt[at], table.score[at], table.len_model[at] - table.len_base[at])
    return out


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
    every = rows_data(table, len(keys))
    for members in groups.values():
        data = {r: every[r] for r in members if r in every}
        fill(rows, data, n_prompts, level)
        for r in members:
            if r not in data:
                rows[r].update({KEY: None, KEY + "_ci_low": None, KEY + "_ci_high": None,
                                KEY + "_na": "answer lengths unknown", "lc_difficulty_models": len(data)})
