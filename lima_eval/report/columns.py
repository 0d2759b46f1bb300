"""The report's pairwise columns, declared once: what each shows, how, and where it goes.

`PAIRWISE` is the one ordered spec of a summary row's columns. The Markdown and HTML tables, summary.csv,
the leaderboard (CSV, Markdown, HTML) and the metrics `lima-eval check` accepts are all read from it, so a
new column is one entry here (and its value in report.summary.pairwise_rows), nothing else.

Cell text is built here and escaped by the HTML renderer; model names and reasons are untrusted text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lima_eval.store import csv_safe


def e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


# Wherever the length-controlled column appears (report, leaderboard), this says what it is and is not.
LC_CAVEAT = ("*Length-controlled: a logistic regression of the verdict on the answers' length difference, read at "
             "equal length. It is not AlpacaEval's LC (no instruction-difficulty term, no regularisation), and a "
             "model can game it; compare it with AlpacaEval's own figure only with care (docs/report.md). "
             "**Length-controlled with difficulty: AlpacaEval 2's idea, fitted our own way: each prompt's difficulty "
             "is estimated from every model the judge compared with the same baseline (at least 3), each model's "
             "length slope is shrunk towards their common one, and the preference is read at equal length prompt "
             "by prompt (docs/report.md). Harder to game by answer length; n/a with fewer models.")


def inline(text: str) -> str:
    """A note's text as HTML: escaped, its `code` spans as <code> (the Markdown page shows the same spans)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", e(text))


def md(x: Any) -> str:
    """Text safe in Markdown: HTML's characters escaped (a model name or an answer cannot inject a tag), table
    pipes escaped, one line. Names and reasons are untrusted text."""
    text = "" if x is None else str(x)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("\r", " "), ("\n", " ")):
        text = text.replace(a, b)
    return text


def pct(x: Any) -> str:
    """A fraction as a percentage with one decimal ('-' for none); shared by the Markdown and HTML tables."""
    return "-" if x is None else f"{100 * float(x):.1f}"


def percent(x: Any) -> str:
    """A fraction as '12.3%', or 'n/a' for an undefined one (never '-%')."""
    return "n/a" if x is None else f"{pct(x)}%"


def ci(r: dict, key: str) -> str:
    """'value [low, high]' in percent for a summary row's rate and its interval; 'n/a (reason)' where the data
    cannot support the figure, and 'value [n/a: reason]' where they support the figure but not its interval."""
    value, reason = r.get(key), r.get(key + "_na")
    if value is None:
        return f"n/a ({reason})" if reason else "-"
    if r.get(key + "_ci_low") is None:
        return f"{pct(value)} [n/a: {reason}]" if reason else pct(value)
    return f"{pct(value)} [{pct(r[key + '_ci_low'])}, {pct(r[key + '_ci_high'])}]"


@dataclass(frozen=True)
class Kind:
    """How a column's value is shown, and the row fields (key + suffix) it carries into a CSV."""

    name: str
    cell: Callable[[dict, str], str]  # (row, key) -> the cell text
    suffixes: tuple[str, ...] = ("",)
    numeric: bool = True  # right-aligned in Markdown


TEXT = Kind("text", lambda r, k: "" if r.get(k) is None else str(r[k]), numeric=False)
COUNT = Kind("count", lambda r, k: "" if r.get(k) is None else str(r[k]))
COUNT_SHARE = Kind("count (share of n)", lambda r, k: f"{r[k]} ({r[k + '_pct']:.0f}%)", ("", "_pct"))
RATE = Kind("percent with interval", ci, ("", "_ci_low", "_ci_high", "_na"))
NUMBER = Kind("number", lambda r, k: "-" if r.get(k) is None else f"{r[k]:.4f}")


@dataclass(frozen=True)
class Column:
    """One column of a summary row: its key in the row dict, its header, its kind and where it goes."""

    key: str
    header: str
    kind: Kind = TEXT
    table: bool = True  # shown in the Markdown and HTML tables (else CSV only)
    leaderboard: bool = False  # carried into the leaderboard
    check: bool = False  # a metric `lima-eval check` can gate on (computed by report.stats.rate_values)
    says: Callable[[dict], str] | None = None  # what the figure counts, after its value in a table ("" for nothing)

    def cell(self, row: dict) -> str:
        text = self.kind.cell(row, self.key)
        return text + self.says(row) if self.says is not None else text

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.key + s for s in self.kind.suffixes)


# Set on a row while it is rendered (never stored): why its judge could not tell the answers apart.
CANNOT_TELL = "_judge_cannot_tell"


def soft_and_discrete(r: dict) -> str:
    """After a win rate averaged from soft scores (logprob or weighted verdicts): the discrete rate beside it (a win
    1, a tie 1/2, a loss 0), and, where the judge could not tell the answers apart, that neither is a finding."""
    said = f"; discrete {ci(r, 'discrete_win_rate')}" if r.get("soft_scores") and r.get("win_rate") is not None else ""
    return said + ("; no finding: the judge could not tell the answers apart" if r.get(CANNOT_TELL) else "")


def no_finding(r: dict) -> str:
    """After a rate fitted from a judge that could not tell the answers apart."""
    return "; no finding" if r.get(CANNOT_TELL) and r.get("length_controlled_win_rate") is not None else ""


def wins_and_ties(r: dict) -> str:
    """After equal or better: the wins and ties it counts, of how many verdicts."""
    if r.get("equal_or_better") is None or r.get("win") is None or r.get("tie") is None:
        return ""
    return f" ({r['win']} wins + {r['tie']} ties of {r['n']})"


def to_longer(r: dict) -> str:
    """After prefers longer: the decisive verdicts (wins and losses between answers of different lengths) it counts."""
    if r.get("prefers_longer") is None or r.get("prefers_longer_decisive") is None:
        return ""
    return f" ({r['prefers_longer_hits']} of {r['prefers_longer_decisive']} wins and losses)"


PAIRWISE: tuple[Column, ...] = (
    Column("judge", "judge", leaderboard=True),
    Column("model", "model", leaderboard=True),
    Column("baseline", "baseline", leaderboard=True),
    Column("n", "n", COUNT, leaderboard=True),
    Column("prompts", "prompts", COUNT, table=False),
    Column("win", "win", COUNT_SHARE),
    Column("tie", "tie", COUNT_SHARE),
    Column("loss", "loss", COUNT_SHARE),
    Column("errors", "errors", COUNT, leaderboard=True),
    Column("missing", "missing", COUNT),
    Column("win_rate", "win rate % [95%]", RATE, leaderboard=True, check=True, says=soft_and_discrete),
    Column("soft_scores", "soft scores", COUNT, table=False),
    Column("standard_error", "standard error", NUMBER, table=False, leaderboard=True),
    Column("equal_or_better", "equal or better % [95%]", RATE, leaderboard=True, check=True, says=wins_and_ties),
    Column("discrete_win_rate", "discrete win rate % [95%]", RATE, table=False, leaderboard=True, check=True),
    Column("length_controlled_win_rate", "length-controlled* % [95%]", RATE, leaderboard=True, says=no_finding),
    Column("length_controlled_difficulty_win_rate", "length-controlled with difficulty** % [95%]", RATE,
           leaderboard=True),
    Column("lc_difficulty_models", "models behind **", COUNT, table=False, leaderboard=True),
    Column("prefers_longer", "prefers longer % [95%]", RATE, says=to_longer),
    Column("prefers_longer_decisive", "decisive verdicts, lengths differing", COUNT, table=False),
    Column("prefers_longer_hits", "of which to the longer answer", COUNT, table=False),
)


def leaderboard_columns(columns: Sequence[Column] = PAIRWISE) -> tuple[Column, ...]:
    """The leaderboard's columns: a row's leaderboard columns, its rank in its table, its benchmark, the run it
    comes from and the judge's cost in that run."""
    return (Column("rank", "#", COUNT), Column("benchmark", "benchmark", table=False),
            *(c for c in columns if c.leaderboard), Column("run", "run"), Column("cost_usd", "cost (USD)", NUMBER))


LEADERBOARD = leaderboard_columns()


def check_metrics(columns: Sequence[Column] = PAIRWISE) -> tuple[str, ...]:
    """The metrics `lima-eval check` accepts, in column order."""
    return tuple(c.key for c in columns if c.check)


def shown(columns: Sequence[Column]) -> list[Column]:
    """The columns of the Markdown and HTML tables."""
    return [c for c in columns if c.table]


def markdown_table(columns: Sequence[Column], rows: Iterable[dict], empty: str | None = None) -> str:
    """A Markdown table (text left-aligned, numbers right); `empty` fills the one row of a table without rows."""
    lines = ["| " + " | ".join(md(c.header) for c in columns) + " |",
             "|" + "".join("---:|" if c.kind.numeric else "---|" for c in columns)]
    lines += ["| " + " | ".join(md(c.cell(r)) for c in columns) + " |" for r in rows]
    if len(lines) == 2 and empty is not None:
        lines.append(f"| {empty} |" + " |" * (len(columns) - 1))
    return "\n".join(lines)


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; every header and cell escaped."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_table(columns: Sequence[Column], rows: Iterable[dict]) -> str:
    return table([c.header for c in columns], ([c.cell(r) for c in columns] for r in rows))


def csv_fields(columns: Sequence[Column]) -> list[str]:
    return [f for c in columns for f in c.fields]


def csv_row(columns: Sequence[Column], row: dict) -> dict[str, Any]:
    """A row's CSV fields, raw values (fractions, not percentages), in column order; text made formula-safe."""
    return {f: csv_safe(row.get(f)) for f in csv_fields(columns)}
