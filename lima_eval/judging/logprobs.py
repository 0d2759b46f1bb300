"""Logprob verdicts: read the judge's probability of each answer option at the token where it gives its verdict.

Pure functions over what a backend returns: for each generated token, its text and the log-probabilities of
the top alternatives at that position (`Completion.logprobs`). The verdict position is the first token after
the reply prefix ("Verdict:"): position 0 when the prefix was prefilled or the judge has none.
"""

from __future__ import annotations

import math

Steps = list[tuple[str, dict[str, float]]]

_STRIP = " \t\n\r*[]()\"'`:."


def normalise(token: str) -> str:
    return token.strip(_STRIP).lower()


def matches(token: str, option: str) -> bool:
    """Whether a token can start the option: 'A' == ' A'; 'ne' and 'neither' start 'neither'."""
    t, o = normalise(token), option.lower()
    if not t:
        return False
    return t == o or (len(o) > 1 and len(t) >= 2 and o.startswith(t))


def verdict_position(steps: Steps, prefix: str | None, prefilled: bool) -> int | None:
    """Index of the first generated token after the reply prefix, or None if the reply never reached it."""
    if prefilled or not prefix:
        return 0 if steps else None
    want = prefix.strip().lower()
    text = ""
    for i, (token, _) in enumerate(steps):
        if text.rstrip(_STRIP.replace(":", "")).lower().endswith(want):
            return i
        text += token
    return None


def chosen_option(steps: Steps, options: dict[str, str], prefix: str | None, prefilled: bool) -> str | None:
    """What the option token the judge actually emitted at the verdict position means (None if it emitted
    something else): the verdict its reply text shows."""
    pos = verdict_position(steps, prefix, prefilled)
    if pos is None or pos >= len(steps):
        return None
    token = steps[pos][0]
    return next((meaning for text, meaning in options.items() if matches(token, text)), None)


def option_probs(steps: Steps, options: dict[str, str], prefix: str | None,
                 prefilled: bool) -> tuple[dict[str, float] | None, str | None]:
    """P(option) over the options at the verdict position, renormalised to sum to 1; or (None, why not).

    `options` maps an option's token text to what it means (e.g. {"A": "first", "B": "second", ...}).
    """
    if not steps:
        return None, "the backend returned no token log-probabilities"
    pos = verdict_position(steps, prefix, prefilled)
    if pos is None or pos >= len(steps):
        return None, f"the reply never reached the verdict prefix {prefix!r}"
    alternatives = dict(steps[pos][1])
    chosen = steps[pos][0]
    mass: dict[str, float] = {meaning: 0.0 for meaning in options.values()}
    seen: set[str] = set()
    for token, lp in alternatives.items():
        if token in seen or lp is None or lp == -math.inf:
            continue
        for text, meaning in options.items():
            if matches(token, text):
                mass[meaning] += math.exp(lp)
                seen.add(token)
                break
    total = sum(mass.values())
    if total <= 0.0:
        return None, f"no answer option among the top tokens at the verdict position (chosen: {chosen!r})"
    return {k: v / total for k, v in mass.items()}, None
