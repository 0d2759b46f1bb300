"""Logprob verdicts with a real small local judge (the embedded SmolLM2 through transformers)."""

import json

import pytest
from conftest import write_config

from lima_eval.config import load_config
from lima_eval.pipeline import run
from lima_eval.store import RunStore

pytestmark = pytest.mark.slow

JUDGE = {"backend": "hf", "model": "embedded:smollm2-135m-instruct", "logprobs": True,
         "sampling": {"temperature": 0, "max_new_tokens": 2, "repetition_penalty": 1.0}}


def test_a_small_local_judge_always_gives_a_verdict_with_logprobs(tmp_path):
    cfg = load_config(write_config(tmp_path / "c.yaml", {
        "name": "lp", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "demo", "limit": 5},
        "models": [{"name": "mine", "model": "embedded:tiny-random", "sampling": {"max_new_tokens": 10}},
                   {"name": "base", "model": "embedded:tiny-random",
                    "sampling": {"temperature": 0, "max_new_tokens": 5}}],
        "baselines": ["base"],
        "judge": JUDGE | {"order": "both"},
        "judges": [JUDGE | {"name": "lima-likert"}],
    }))
    run(cfg, show_progress=False)
    from lima_eval.judging.definitions import load_definition
    from lima_eval.judging.parsers import FIRST, NEITHER, get_parser

    parse = get_parser(load_definition("lima-pairwise").parser)
    store = RunStore(cfg.run_dir)
    judgments = list(store.judgments().values())
    assert len(judgments) == 10
    for j in judgments:
        assert j.error is None and j.verdict in ("a", "b", "tie")
        assert abs(sum(j.probs.values()) - 1) < 1e-4
        # The verdict is the option the (greedy) reply shows, or the most probable option if it shows none.
        option, _ = parse(j.raw)
        if option is None:
            assert j.verdict == max(j.probs, key=j.probs.get)
        else:
            first = j.shown_first
            assert j.verdict == ("tie" if option == NEITHER else first if option == FIRST else
                                 {"a": "b", "b": "a"}[first])
    ratings = list(store.ratings().values())
    assert len(ratings) == 10 and all(r.error is None for r in ratings)
    for r in ratings:
        assert 1.0 <= r.score <= 6.0 and set(r.probs) == {"1", "2", "3", "4", "5", "6"}
        assert r.score == pytest.approx(sum(p * int(k) for k, p in r.probs.items()), abs=1e-4)
    card = json.loads((cfg.run_dir / "report/summary.json").read_text())["judges"][0]
    assert card["pairs_both_orders"] == 5 and card["position_consistency"] is not None
