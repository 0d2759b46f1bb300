"""Rating scales: what a rating's `scale` (a judge.yaml's `scale:`, a human label, an imported grade) means to the
rest of lima-eval. A scale names the report sections its ratings feed, how the ratings figure draws it, and the
labels people give on it; everything that used to ask `scale == ...` asks the scale instead.

Built-ins and plugins alike are registered through the entry point group `lima_eval.scales` (a Scale
subclass). A scale nobody registered (a judge.yaml may name any, e.g. `rubric`) is a plain labelled scale: its
ratings feed the ratings section only.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from lima_eval.registry import SCALES


class Scale:
    """A rating scale. Subclasses set the class attributes."""

    name: ClassVar[str] = ""
    # The report sections (their keys, lima_eval.report.sections) this scale's ratings feed.
    sections: ClassVar[tuple[str, ...]] = ("ratings",)
    # How the ratings figure draws a panel: label shares as stacked bars, or the mean score with its interval.
    figure: ClassVar[str] = "shares"
    # The labels on it, worst first, where they are fixed (people label on it; the report's shares use them).
    labels: ClassVar[tuple[str, ...]] = ()
    # ... and how an error message names them.
    labels_text: ClassVar[str] = ""

    def feeds(self, section: str) -> bool:
        """Whether this scale's ratings are numbers of the report section `section`."""
        return section in self.sections

    def score(self, label: str) -> float:
        """A label's rank on the scale, 1 for the worst."""
        return float(self.labels.index(label) + 1)


class Absolute(Scale):
    """LIMA's fail / pass / excellent."""

    name, labels, labels_text = "absolute", ("fail", "pass", "excellent"), "fail, pass, excellent"


class Likert(Scale):
    """A 1-6 helpfulness score (drawn as the mean with its interval)."""

    name, figure, labels, labels_text = "likert", "mean", ("1", "2", "3", "4", "5", "6"), "1-6"


class Safety(Scale):
    """refused / safe / unsafe: the ratings table, and the safety section's safe and over-refusal rates."""

    name, sections = "safety", ("ratings", "safety")


class MTBench(Scale):
    """MT-bench's 1-10 single-answer grades: the ratings table, and the MT-bench section's scores."""

    name, sections = "mt-bench", ("ratings", "mt_bench")


class Checklist(Scale):
    """Criteria met, not labels: the checklist section only."""

    name, sections = "checklist", ("checklist",)


@functools.cache
def scale(name: str) -> Scale:
    """The scale called `name`; a plain labelled scale for a name nobody registered."""
    return SCALES.load(name)() if name in SCALES.names() else Scale()


def labelled() -> list[Scale]:
    """The scales with fixed labels, which people can label on (`lima-eval import-human`, the labelling app)."""
    return [s for s in map(scale, SCALES.names()) if s.labels]
