"""The instruction-difficulty length-controlled fit (report/lc.py): its numbers against golden values computed by
the dense-Hessian fit it replaced, and its cost, linear in prompts."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from lima_eval.judging.foreign import import_judgments
from lima_eval.report import lc
from lima_eval.report.gather import gather
from lima_eval.report.summary import pair_table, row_keys
from lima_eval.run import Run

GOLDEN = Path(__file__).parent / "golden"
AE2_SEVEN = ("alpaca-7b", "claude-2", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-1106", "vicuna-13b", "falcon-7b-instruct",
             "gpt4_gamed")


def _assert_golden(models: dict[str, lc.ModelData], golden: dict) -> None:
    names = list(golden["models"])
    gamma, slope = lc.difficulties([models[n] for n in names], golden["n_prompts"])
    assert slope == pytest.approx(golden["slope"], abs=1e-6)
    assert np.abs(gamma - np.array(golden["gamma"])).max() < 1e-6
    fitted = lc.joint_length_controlled(models, golden["n_prompts"])
    assert list(fitted) == names
    for name, want in golden["models"].items():
        got = fitted[name]
        assert got.models == len(names)
        assert (got.value, got.low, got.high) == pytest.approx((want["value"], want["low"], want["high"]), abs=1e-6)
        assert got.coefficients == pytest.approx(tuple(want["coefficients"]), abs=1e-6)


def test_the_fit_keeps_its_golden_numbers_on_a_synthetic_benchmark():
    """Five models on 60 prompts, each missing some prompts, with ties and one soft-score judge: the difficulties,
    the common slope, every model's (theta, phi, beta), LC and interval are the dense fit's to 1e-6."""
    golden = json.loads((GOLDEN / "lc-synthetic.json").read_text())
    models = {n: lc.ModelData(np.array(d["prompt"], dtype=np.int64), np.array(d["score"]), np.array(d["delta"]))
              for n, d in golden["inputs"].items()}
    _assert_golden(models, golden)


def test_the_fit_keeps_its_golden_numbers_on_alpaca_eval_2(shared_data, tmp_path):
    """AlpacaEval 2's seven annotation files in one run, read by the report's own path: the same to 1e-6."""
    run = tmp_path / "one"
    for m in AE2_SEVEN:
        import_judgments(run, shared_data / f"alpaca_eval/results/{m}/weighted_alpaca_eval_gpt4_turbo/annotations.json",
                         "alpaca-eval")
    inp, _ = gather(Run(run))
    keys = row_keys(inp)
    table, index, _, _ = pair_table(inp, keys)
    golden = json.loads((GOLDEN / "lc-alpaca-eval-2.json").read_text())
    assert len(index) == golden["n_prompts"] == 805
    every = lc.rows_data(table, len(keys))
    assert all(every[r].prompt.tolist() == lc.row_data(table, r).prompt.tolist() for r in range(len(keys)))
    _assert_golden({keys[r][0]: every[r] for r in range(len(keys))}, golden)


def _benchmark(n_models: int, n_prompts: int, seed: int = 0) -> dict[str, lc.ModelData]:
    rng = np.random.default_rng(seed)
    hard = rng.normal(0, 1, n_prompts)
    out = {}
    for m in range(n_models):
        delta = rng.normal(30 * m, 300, n_prompts)
        p = 1 / (1 + np.exp(-(0.3 * m - 1 + 0.5 * np.tanh(delta / 300) - hard)))
        out[f"m{m}"] = lc.ModelData(np.arange(n_prompts), (rng.random(n_prompts) < p).astype(float), delta)
    return out


def test_the_fit_is_linear_in_prompts():
    """Ten times the prompts cost about ten times the time, not a thousand (the dense fit took minutes at 5,000
    prompts); 20,000 prompts, past what a dense Hessian's memory allows, fit in well under a second or two."""
    def seconds(n_prompts: int) -> float:
        data = _benchmark(10, n_prompts)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            lc.joint_length_controlled(data, n_prompts)
            best = min(best, time.perf_counter() - start)
        return best

    small, large = seconds(2_000), seconds(20_000)
    assert large / small < 30, (small, large)
    assert large < 5, large
