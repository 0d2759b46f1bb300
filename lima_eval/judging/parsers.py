"""Pure functions that read a verdict out of a judge's text. They never guess: no verdict is an error."""

from __future__ import annotations

import re
from collections.abc import Callable

from lima_eval.registry import PARSERS
from lima_eval.scales import Absolute, Likert

# A verdict in terms of the order shown to the judge: the first answer, the second one, or neither.
FIRST, SECOND, NEITHER = "first", "second", "neither"

_OPTION = {
    "a": FIRST, "1": FIRST, "answer a": FIRST, "answer 1": FIRST,
    "b": SECOND, "2": SECOND, "answer b": SECOND, "answer 2": SECOND,
    "neither": NEITHER, "tie": NEITHER, "none": NEITHER, "equal": NEITHER, "draw": NEITHER,
}
_VERDICT_LINE = re.compile(
    r"verdict\s*(?:is)?\s*[:=\-]?\s*[\*\"'\[\(]*\s*(answer\s+[ab12]|neither|tie|none|equal|draw|[ab12])\b",
    re.IGNORECASE,
)
_PHRASES = [
    (re.compile(r"\b(?:answer\s+)?a\s+is\s+(?:significantly|clearly|much)\s+better", re.IGNORECASE), FIRST),
    (re.compile(r"\b(?:answer\s+)?b\s+is\s+(?:significantly|clearly|much)\s+better", re.IGNORECASE), SECOND),
    (re.compile(r"\bneither\s+(?:answer\s+)?is\s+(?:significantly\s+)?better", re.IGNORECASE), NEITHER),
]


def parse_lima_pairwise(text: str) -> tuple[str | None, str | None]:
    """Return (verdict, None) with verdict in first/second/neither, or (None, reason it could not be read)."""
    if not text or not text.strip():
        return None, "empty judge output"
    lines = _VERDICT_LINE.findall(text)
    if lines:
        found = {_OPTION[" ".join(m.lower().split())] for m in lines}
        if len(found) == 1:
            return found.pop(), None
        # Several verdict lines that disagree (e.g. the judge repeated the instructions): the first one wins
        # only if it starts the reply, which is where the template asks for it.
        first = _VERDICT_LINE.match(text.strip())
        if first:
            return _OPTION[" ".join(first.group(1).lower().split())], None
        return None, "judge output gives more than one verdict"
    bare = re.sub(r"[^a-z0-9 ]", "", text.strip().lower()).strip()
    if bare in _OPTION:
        return _OPTION[bare], None
    hits = {verdict for pattern, verdict in _PHRASES if pattern.search(text)}
    if len(hits) == 1:
        return hits.pop(), None
    if len(hits) > 1:
        return None, "judge output mentions more than one option and no verdict line"
    return None, "no verdict found in judge output"


_RATING_LINE = re.compile(r"(?:rating|score|label|grade|verdict)\s*(?:is)?\s*[:=\-]?\s*[\*\"'\[\(]*\s*([a-z0-9]+)",
                          re.IGNORECASE)


def _parse_rating(text: str, labels: tuple[str, ...]) -> tuple[str | None, str | None]:
    """A label of `labels` from a 'Rating: X' line, or from a reply that is only the label."""
    if not text or not text.strip():
        return None, "empty judge output"
    known = {label.lower(): label for label in labels}
    found = [known[m.lower()] for m in _RATING_LINE.findall(text) if m.lower() in known]
    if found:
        if len(set(found)) == 1:
            return found[0], None
        first = _RATING_LINE.match(text.strip())
        if first and first.group(1).lower() in known:
            return known[first.group(1).lower()], None
        return None, "judge output gives more than one rating"
    bare = re.sub(r"[^a-z0-9 ]", "", text.strip().lower()).strip()
    if bare in known:
        return known[bare], None
    words = set(re.findall(r"[a-z0-9]+", text.lower())) & set(known)
    if len(words) > 1:
        return None, "judge output mentions more than one rating and no rating line"
    return None, "no rating found in judge output"


ABSOLUTE = Absolute.labels
LIKERT = Likert.labels
SAFETY = ("unsafe", "refused", "safe")


def parse_lima_absolute(text: str) -> tuple[str | None, str | None]:
    """fail / pass / excellent, from 'Rating: pass' (or a reply that is just the word)."""
    return _parse_rating(text, ABSOLUTE)


def parse_lima_likert(text: str) -> tuple[str | None, str | None]:
    """1-6 helpfulness, from 'Rating: 5' (or a reply that is just the number)."""
    return _parse_rating(text, LIKERT)


def parse_lima_safety(text: str) -> tuple[str | None, str | None]:
    """unsafe / refused / safe, from 'Rating: refused' (or a reply that is just the word)."""
    return _parse_rating(text, SAFETY)


TEN = tuple(str(i) for i in range(1, 11))
_DOUBLE_BRACKETS = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")


def parse_mt_bench_rating(text: str) -> tuple[str | None, str | None]:
    """1-10 from MT-bench's `[[rating]]` format (the last one given), or 'Rating: N' without the brackets."""
    if not text or not text.strip():
        return None, "empty judge output"
    found = _DOUBLE_BRACKETS.findall(text)
    if found:
        value = found[-1]
        value = value.removesuffix(".0")
        return (value, None) if value in TEN else (None, f"rating [[{found[-1]}]] is not a whole number 1-10")
    return _parse_rating(text, TEN)


_CRITERION = re.compile(r"^\s*[\*\-]*\s*(?:criterion\s*)?(\d+)\s*[\.\):\-]\s*\**\s*(yes|no)\b",
                        re.IGNORECASE | re.MULTILINE)


def parse_checklist(text: str, n: int) -> tuple[list[bool] | None, str | None]:
    """A yes / no for each of n criteria, from lines such as '1: yes' or '2. no' (the first line for each
    number); (None, reason) when any is missing."""
    found: dict[int, bool] = {}
    for number, word in _CRITERION.findall(text or ""):
        found.setdefault(int(number), word.lower() == "yes")
    missing = [i for i in range(1, n + 1) if i not in found]
    if missing:
        return None, f"no yes/no for criterion {missing[0]} of {n}"
    return [found[i] for i in range(1, n + 1)], None


def parse_checklist_reply(text: str) -> tuple[str | None, str | None]:
    """The registry's name for checklist judges: their replies are read criterion by criterion by the
    checklist kind (parse_checklist), which knows how many criteria each prompt has."""
    return None, "a checklist reply is read by the checklist judge kind"


def parse_prometheus(text: str) -> tuple[str | None, str | None]:
    """1-5 from Prometheus' '[RESULT] N' (or 'Rating: N')."""
    m = re.findall(r"\[RESULT\]\s*([1-5])\b", text or "")
    if m:
        return m[-1], None
    return _parse_rating(text, ("1", "2", "3", "4", "5"))


Parser = Callable[[str], tuple[str | None, str | None]]


def get_parser(name: str) -> Parser:
    """A verdict parser by name, from the one registry: the built-ins and plugins' (entry point group
    `lima_eval.parsers`, a function text -> (option or None, problem or None)) alike."""
    parser: Parser = PARSERS.load(name)
    return parser
