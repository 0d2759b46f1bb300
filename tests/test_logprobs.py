"""Logprob verdicts: finding the verdict token and turning its alternatives into option probabilities."""

import math

import pytest

from lima_eval.judging.kinds import PAIRWISE_OPTIONS
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


@pytest.mark.parametrize("emitted,summed,verdict", [
    # The judge emitted " A" (its single most likely token) while the spellings of "neither" sum to more:
    # the verdict is what its reply says, A; the probabilities stay as they are (its confidence).
    (" A", {" A": 0.47, " neither": 0.30, "Neither": 0.21, " B": 0.02}, "first"),
    (" B", {" B": 0.5, " A": 0.3, " neither": 0.2}, "second"),
    # It emitted something that is no option: the most probable option (summed) is the verdict.
    (" The", {" The": 0.5, " A": 0.1, " neither": 0.15, "Neither": 0.1, " B": 0.15}, "neither"),
])
def test_the_verdict_is_the_option_the_reply_shows(emitted, summed, verdict):
    from lima_eval.backends.base import Completion
    from lima_eval.judging.definitions import load_definition
    from lima_eval.judging.items import read_option

    definition = load_definition("lima-pairwise")
    steps = [(emitted, {k: math.log(v) for k, v in summed.items()})]
    option, probs, problem = read_option(definition, "Verdict:" + emitted, Completion(text=emitted, logprobs=steps),
                                         use_logprobs=True, prefilled=True)
    assert problem is None and option == verdict
    assert probs is not None and sum(probs.values()) == pytest.approx(1.0)
