"""Kinds of files lima-eval imports, one registry for all of them (IMPORT_FORMATS, entry point group
`lima_eval.import_formats`). A format belongs to one family, and its registry name is `<family>.<name>`:

  answers    `lima-eval import-answers --format NAME`: answers written elsewhere (lima_eval.answers.AnswersFormat)
  judgments  `lima-eval import-judgments --format NAME`: other tools' judgments (judging.foreign.JudgmentsFormat)
  gold       `lima-eval judge-card --gold`: human-labelled pairs to rate a judge by (judging.gold.GoldFormat)
  human      `lima-eval import-human`: people's labels as CSV (judging.human.HumanFormat)

A format says whether a file is its own (`detect`, where a family detects: answers' `--format auto`, a gold file
or folder, a labels CSV) and reads it (`read`, whose arguments are its family's). Formats are tried in `rank`
order, which is also their order in `--help`; a family's catch-all (plain JSONL answers, PandaLM gold, pairwise
labels) has the highest rank, so a plugin's format is asked before it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from lima_eval.errors import LimaEvalError, UnknownNameError
from lima_eval.registry import IMPORT_FORMATS, suggest

FAMILIES = ("answers", "judgments", "gold", "human")
F = TypeVar("F", bound="ImportFormat")


class ImportFormat:
    """A kind of imported file. Subclass a family's base (AnswersFormat, JudgmentsFormat, GoldFormat,
    HumanFormat), which sets `family` and declares the `read` its family calls; set `name` (what users type,
    the part of the registry name after the family) and, where the family detects, `detect`."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    rank: ClassVar[int] = 100  # detection and --help order; a catch-all goes last
    description: ClassVar[str] = ""

    def detect(self, path: Path, first: Any) -> bool:
        """Whether `path` is a file (or folder) of this format; `first` is its family's first look at it: the
        first JSON row (answers, gold; None where the file has none or is not JSON), the CSV header (human)."""
        return False

    def __repr__(self) -> str:
        return f"<import format {self.family}.{self.name}>"


def key(family: str, name: str) -> str:
    """The registry name of a format: `<family>.<name>` (the same name may be an answers and a judgments format)."""
    return f"{family}.{name}"


def names(family: str) -> list[str]:
    """The names of a family's formats (built-ins and plugins), in rank order."""
    return [f.name for f in formats(family, ImportFormat)]


def formats(family: str, base: type[F]) -> list[F]:
    """A family's formats, in rank order (then by name)."""
    prefix = key(family, "")
    found = [get(family, n[len(prefix):], base) for n in IMPORT_FORMATS.names() if n.startswith(prefix)]
    return sorted(found, key=lambda f: (f.rank, f.name))


def get(family: str, name: str, base: type[F]) -> F:
    """The format `name` of `family`, checked to be a `base` that says it is that format."""
    full = key(family, name)
    try:
        target = IMPORT_FORMATS.target(full)
    except UnknownNameError:
        known = names(family)
        raise UnknownNameError(f"unknown {family} format '{name}'{suggest(name, known)}; known: "
                               f"{', '.join(known) or '(none)'}") from None
    cls = IMPORT_FORMATS.load(full)
    fmt = cls() if isinstance(cls, type) else cls
    if not isinstance(fmt, base):
        raise LimaEvalError(f"import format '{full}' ({target}) is not a {base.__name__}")
    if (fmt.family, fmt.name) != (family, name):
        raise LimaEvalError(f"import format '{full}' ({target}) says it is '{key(fmt.family, fmt.name)}'; its "
                            "entry point's name must be <family>.<name>")
    return fmt


def detect(family: str, path: Path, first: Any, base: type[F]) -> F | None:
    """The first of a family's formats (in rank order) that says `path` is its own, or None."""
    return next((f for f in formats(family, base) if f.detect(path, first)), None)
