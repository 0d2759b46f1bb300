import pytest

from lima_eval.judging.parsers import (
    FIRST,
    NEITHER,
    SECOND,
    parse_lima_absolute,
    parse_lima_likert,
    parse_lima_pairwise,
)

CASES = [
    ("Verdict: A", FIRST),
    ("Verdict: B\nAnswer B explains the steps.", SECOND),
    ("Verdict: neither", NEITHER),
    ("verdict - tie", NEITHER),
    ("**Verdict: B**", SECOND),
    ("Verdict: Answer A", FIRST),
    ("Verdict: A\nBoth answers are fine but A is more complete; B misses a step.", FIRST),
    ("A", FIRST),
    ("B.", SECOND),
    ("Neither", NEITHER),
    ("Verdict: A\nVerdict: B", FIRST),  # the template asks for the verdict first
    ("After reading both, Answer B is significantly better.", SECOND),
    ("Neither answer is significantly better.", NEITHER),
    ("Verdict:  A (it is safer)", FIRST),
]

ERRORS = [
    ("", "empty"),
    ("   ", "empty"),
    ("I like both answers.", "no verdict"),
    ("Verdict: Desserts", "no verdict"),
    ("Answer A is significantly better in tone, but Answer B is significantly better in content.", "more than one"),
    ("Some thoughts. Verdict: A. On reflection, Verdict: B", "more than one verdict"),
    ("Verdict:D (the", "no verdict"),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_reads_verdict(text, expected):
    assert parse_lima_pairwise(text) == (expected, None)


@pytest.mark.parametrize("text,problem", ERRORS)
def test_unreadable_output_is_an_error_never_a_tie(text, problem):
    verdict, error = parse_lima_pairwise(text)
    assert verdict is None
    assert problem in error


RATINGS = [
    (parse_lima_absolute, "Rating: pass", "pass"),
    (parse_lima_absolute, "Rating: excellent\nThorough and correct.", "excellent"),
    (parse_lima_absolute, "**Rating:** Fail - it ignores the question.", "fail"),
    (parse_lima_absolute, "pass", "pass"),
    (parse_lima_absolute, "Rating: pass\nIt is not excellent, but it does not fail either.", "pass"),
    (parse_lima_likert, "Rating: 5", "5"),
    (parse_lima_likert, "Rating: 6 (highly helpful)", "6"),
    (parse_lima_likert, "Score: 3", "3"),
    (parse_lima_likert, "4", "4"),
]

RATING_ERRORS = [
    (parse_lima_absolute, "", "empty"),
    (parse_lima_absolute, "It could pass, or it could fail.", "more than one rating"),
    (parse_lima_absolute, "Rating: good", "no rating"),
    (parse_lima_likert, "Rating: 9", "no rating"),
    (parse_lima_likert, "Some thoughts. Rating: 2. On reflection, Rating: 5", "more than one rating"),
]


@pytest.mark.parametrize("parser,text,expected", RATINGS)
def test_reads_ratings(parser, text, expected):
    assert parser(text) == (expected, None)


@pytest.mark.parametrize("parser,text,problem", RATING_ERRORS)
def test_unreadable_rating_is_an_error(parser, text, problem):
    label, error = parser(text)
    assert label is None and problem in error
