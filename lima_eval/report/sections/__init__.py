"""Report sections: each one computes its numbers once and renders them everywhere a report shows them.

A section owns its `summary.json` key, its Markdown, its HTML, its CSV files, its figure and the notes it adds,
all from the data its `compute` returned, so report.md and report.html cannot drift apart. Sections are found
through the `lima_eval.report_sections` registry (entry point group of the same name): the built-ins are
registered exactly as a plugin's would be. `build_report` computes them in `rank` order (a section may read the
data of the sections before it from `ctx.data`) and renders them in `place` order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lima_eval.config import RunConfig
from lima_eval.errors import LimaEvalError
from lima_eval.records import Prompt
from lima_eval.registry import REPORT_SECTIONS
from lima_eval.report.columns import e, inline, md, table
from lima_eval.store import RunStore

if TYPE_CHECKING:
    from lima_eval.report.gather import JudgeRecords
    from lima_eval.report.summary import Inputs


@dataclass
class Context:
    """What every section computes from: the run's config, store and prompts, the gathered records, and the
    data of the sections computed before it (by key)."""

    inp: Inputs
    cfg: RunConfig | None = None  # None: numbers from inputs alone (summarize: the leaderboard, check, notebooks)
    store: RunStore | None = None
    prompts: list[Prompt] = field(default_factory=list)
    groups: list[JudgeRecords] = field(default_factory=list)
    anchor: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # section key -> its computed data
    shared: dict[str, Any] = field(default_factory=dict)  # what a section leaves for later ones (not reported)
    figures: dict[str, Path | None] = field(default_factory=dict)  # section key -> its figure (once written)

    @property
    def run(self) -> tuple[RunConfig, RunStore]:
        """The run's config and store (sections that need a run folder: not in `summarize`)."""
        assert self.cfg is not None and self.store is not None, "this section needs a run"
        return self.cfg, self.store

    @property
    def out(self) -> Path:
        return self.run[1].report_dir


class Section:
    """One part of a report. Subclasses set `key` (its summary.json key) and `title`, and override what they
    show; every method has a harmless default, so a section may be numbers only (`markdown` "") or notes only."""

    key: str = ""
    title: str = ""
    rank: int = 100  # compute order; summary.json's keys follow it
    place: int = 100  # where report.md and report.html show it
    from_inputs = False  # computed from the gathered records alone (so `summarize` gives it without a run)

    def compute(self, ctx: Context) -> Any:
        """The section's numbers (JSON-ready: they go into summary.json under `key`)."""
        return None

    def notes(self, data: Any, ctx: Context) -> list[tuple[int, str]]:
        """(rank, note) pairs for the report's Notes; a lower rank is said first."""
        return []

    def csv(self, data: Any, ctx: Context) -> dict[str, list[dict[str, Any]]]:
        """file name -> rows, written to report/ (a CSV of no rows is written empty)."""
        return {}

    def figure(self, data: Any, ctx: Context) -> Path | None:
        """Draw the section's figure into ctx.out and return its path (None: no figure)."""
        return None

    def markdown(self, data: Any, ctx: Context) -> str:
        return ""

    def html(self, data: Any, ctx: Context) -> list[str]:
        return []


def table_markdown(title: str, head: list[str], rows: list[list[Any]], explained: str, named: int = 2) -> str:
    """A section's table in report.md: its title, the header, the first `named` columns (names, escaped) left
    and the rest (numbers) right, then what the table means."""
    lines = [f"## {title}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * named + ["---:"] * (len(head) - named)) + "|"]
    lines += ["| " + " | ".join([md(c) for c in row[:named]] + [str(c) for c in row[named:]]) + " |" for row in rows]
    return "\n".join([*lines, "", explained]) + "\n"


def table_html(title: str, head: list[str], rows: list[list[Any]], explained: str) -> list[str]:
    """The same table in report.html."""
    return [f"<h2>{e(title)}</h2>", table(head, rows), f'<p class="note">{inline(explained)}</p>']


def sections() -> list[Section]:
    """Every registered section (built-ins and plugins), in compute order."""
    found = []
    for name in REPORT_SECTIONS.names():
        cls = REPORT_SECTIONS.load(name)
        section = cls() if isinstance(cls, type) else cls
        if not isinstance(section, Section):
            raise LimaEvalError(f"report section '{name}' ({REPORT_SECTIONS.target(name)}) is not a Section")
        found.append(section)
    return sorted(found, key=lambda s: (s.rank, s.key))


def summarize_with_context(inp: Inputs, anchor: str | None = None) -> Context:
    """The sections computed from the gathered records alone, in a context (their data by key, and what the
    pairwise section shares: the PairTable and its prompt index, for the leaderboard's cross-run fits)."""
    ctx = Context(inp=inp, anchor=anchor)
    for section in sections():
        if section.from_inputs:
            ctx.data[section.key] = section.compute(ctx)
    return ctx


def summarize(inp: Inputs, anchor: str | None = None) -> dict[str, Any]:
    """The report's numbers that need no run folder (rows, Bradley-Terry, ratings, agreement, MT-bench,
    checklists, and plugins' sections of that sort), by summary.json key."""
    return summarize_with_context(inp, anchor).data
