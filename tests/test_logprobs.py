"""Logprob verdicts: finding the verdict token and turning its alternatives into option probabilities."""

import math

import pytest

from lima_eval.judging.definitions import PAIRWISE_OPTIONS
from lima_eval.judging.logprobs import matches, option_probs, verdict_position


def step(token, **alts):
    return (token, {k.replace("_", " "): v for k, v in alts.items()})


def test_prefilled_reply_reads_position_zero():
    steps = [(" A", {" A": math.log(0.6), " B": math.log(0.3), " neither": math.log(0.05), " The": -5.0})]
    probs, why = option_probs(steps, PAIRWISE_OPTIONS, "Verdict:", prefilled=True)
    assert why is None
    assert probs == pytest.approx({"first": 0.6 / 0.95, "second": 0.3 / 0.95, "neither": 0.05 / 0.95})


def test_unprefilled_reply_reads_the_token_after_the_prefix():
    steps = [("Ver", {"Ver": -0.1}), ("dict", {"dict": -0.1}), (":", {":": -0.1}),
             (" B", {" B": math.log(0.7), " A": math.log(0.2), "neither": math.log(0.1)}), ("\n", {"\n": 0.0})]
    assert verdict_position(steps, "Verdict:", prefilled=False) == 3
    probs, _ = option_probs(steps, PAIRWISE_OPTIONS, "Verdict:", prefilled=False)
    assert max(probs, key=probs.get) == "second" and probs["second"] == pytest.approx(0.7)


def test_same_option_under_several_tokens_is_summed():
    steps = [(" A", {" A": math.log(0.4), "A": math.log(0.2), " B": math.log(0.2), " ne": math.log(0.2)})]
    probs, _ = option_probs(steps, PAIRWISE_OPTIONS, None, prefilled=False)
    assert probs == pytest.approx({"first": 0.6, "second": 0.2, "neither": 0.2})


@pytest.mark.parametrize("steps,why", [
    ([], "no token log-probabilities"),
    ([("I", {"I": -0.1}), (" think", {" think": -0.1})], "never reached"),
    ([("Verdict", {}), (":", {}), (" **", {" **": -0.1, " The": -2.0})], "no answer option"),
])
def test_failures_say_why(steps, why):
    probs, problem = option_probs(steps, PAIRWISE_OPTIONS, "Verdict:", prefilled=False)
    assert probs is None and why in problem


@pytest.mark.parametrize("token,option,ok", [
    (" A", "A", True), ("a", "A", True), (" Alpha", "A", False), (" ne", "neither", True),
    (" n", "neither", False), (" 5", "5", True), (" excellent", "excellent", True), ("", "A", False),
])
def test_token_matching(token, option, ok):
    assert matches(token, option) is ok
