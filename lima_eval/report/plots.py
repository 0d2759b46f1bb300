"""Figures: LIMA Figure 1 style win / tie / loss bars (a panel per judge), Figure 3 style fail / pass /
excellent shares, Likert means with intervals, and the leaderboard chart.

Drawn with matplotlib's object-oriented Figure on the Agg canvas (pyplot's global state is not needed), and only
when what a figure shows changed: each PNG carries a hash of the rows it was drawn from (and of this drawing code),
so a rebuilt report whose numbers did not move keeps its figures and never imports matplotlib (importing it is
most of a small report's time)."""

from __future__ import annotations

import functools
import hashlib
import io
import struct
from pathlib import Path
from typing import Any

from lima_eval import __version__
from lima_eval.records import content_id
from lima_eval.scales import scale
from lima_eval.store import write_atomic

COLOURS = {"win": "#4C9A6A", "tie": "#C9C9C9", "loss": "#C8553D"}
DRAWN_FROM = "lima-eval drawn from"  # the PNG text chunk that holds the hash of what the figure was drawn from


def _figure(**kwargs: Any) -> Any:
    """A new figure on the Agg canvas (nothing shown on screen, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


# A bar per (model, baseline) up to this many; a large round robin (190 pairs of 20 models) shows its first ones
# (the config's pairs first), with a line saying so: a figure 100 inches tall is unreadable, and drawing it took
# most of a million-judgment report's figure time. Every row stays in the tables and summary.csv.
MAX_WINRATE_BARS = 40


def winrate_figure(rows: list[dict[str, Any]], path: Path) -> Path:
    """LIMA's Figure 1: a panel per judge, a bar per (model, baseline), the first row on top in every panel."""
    key = drawn_from("winrate", rows)
    return path if is_drawn(path, key) else _write(winrate_axes(rows), path, key)


def winrate_axes(rows: list[dict[str, Any]]) -> Any:
    """The win / tie / loss figure (not yet written): the first MAX_WINRATE_BARS (model, baseline) pairs."""
    from matplotlib.patches import Rectangle

    judges = list(dict.fromkeys(r["judge"] for r in rows))
    every = list(dict.fromkeys(f"{r['model']}\nvs {r['baseline']}" for r in rows))
    labels = every[:MAX_WINRATE_BARS]
    height = 1.0 + 0.55 * max(1, len(labels))
    fig = _figure(figsize=(6.4 * len(judges), height))
    axes = fig.subplots(1, len(judges), squeeze=False, sharey=True)
    for ax, judge in zip(axes[0], judges):
        mine = {f"{r['model']}\nvs {r['baseline']}": r for r in rows if r["judge"] == judge}
        for y, label in enumerate(labels):
            r = mine.get(label)
            if r is None or r["n"] == 0:
                ax.text(50, y, "no verdicts" if r is None else f"no verdicts ({r['errors']} errors)",
                        ha="center", va="center", fontsize=8, color="#666")
                continue
            left = 0.0
            for key in ("win", "tie", "loss"):
                pct = r[f"{key}_pct"]
                ax.barh(y, pct, left=left, color=COLOURS[key], edgecolor="white",
                        label=key.capitalize() if y == 0 else None)
                if pct >= 7:
                    ax.text(left + pct / 2, y, f"{pct:.0f}%", ha="center", va="center", fontsize=8)
                left += pct
            # LIMA's headline figure, equal or better, with the wins and ties it counts (all ties is no win).
            ax.text(101, y, equal_or_better_label(r), va="center", fontsize=7, color="#333")
        ax.set_xlim(0, 100)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        # The panels share their y axis, so inverting each would flip it back with every second panel (a human
        # panel reversed the rows): the first row is put on top once, by the limits.
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_title(judge, fontsize=9)
        ax.set_xlabel("% of readable verdicts (errors excluded); right: equal or better = wins + ties of n",
                      fontsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    handles = [Rectangle((0, 0), 1, 1, color=COLOURS[k]) for k in ("win", "tie", "loss")]
    fig.legend(handles, ["Model wins", "Tie", "Baseline wins"], loc="lower center", ncol=3, fontsize=8,
               frameon=False)
    top = 1.0
    if len(every) > len(labels):
        fig.suptitle(f"The first {len(labels)} of {len(every)} model / baseline pairs; every pair is in the "
                     "win / tie / loss table and summary.csv", fontsize=8)
        top = 1 - 0.5 / height
    fig.tight_layout(rect=(0, 0.12 if height < 3 else 0.06, 1, top))
    return fig


def equal_or_better_label(r: dict[str, Any]) -> str:
    """A bar's equal-or-better label: the share and the wins and ties it counts, of how many verdicts."""
    return f"equal or better {r['win_pct'] + r['tie_pct']:.0f}%\n= {r['win']} wins + {r['tie']} ties of {r['n']}"


RATING_COLOURS = ["#C8553D", "#E8B04B", "#4C9A6A", "#2E6F8E", "#6A4C93", "#8FB339"]


def ratings_figure(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """A panel per (judge, scale): label shares as stacked bars (LIMA Figure 3) for absolute scales, and
    the mean with its 95% interval for the 1-6 Likert scale. One bar per model and prompt subset."""
    panels = list(dict.fromkeys((r["judge"], r["scale"]) for r in rows if r["n"]))
    if not panels:
        return None
    key = drawn_from("ratings", rows, {name: scale(name).figure for _, name in panels})
    if is_drawn(path, key):
        return path
    sizes = [sum(1 for r in rows if (r["judge"], r["scale"]) == p and r["n"]) for p in panels]
    fig = _figure(figsize=(7.5, sum(0.9 + 0.32 * n for n in sizes)))
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": sizes})
    for ax, (judge, scale_name) in zip(axes[:, 0], panels):
        mine = [r for r in rows if (r["judge"], r["scale"]) == (judge, scale_name) and r["n"]]
        names = [r["model"] if r["subset"] == "all" else f"{r['model']} · {r['subset']}" for r in mine]
        if scale(scale_name).figure == "mean":
            means = [r["mean_score"] for r in mine]
            lo = [r["mean_score"] - r["mean_score_ci_low"] for r in mine]
            hi = [r["mean_score_ci_high"] - r["mean_score"] for r in mine]
            ax.errorbar(means, range(len(mine)), xerr=[lo, hi], fmt="o", color="#2E6F8E", capsize=3)
            ax.set_xlim(1, 6)
            ax.set_xlabel("mean helpfulness (1-6), 95% interval", fontsize=8)
        else:
            labels = mine[0]["labels"]
            for y, r in enumerate(mine):
                left = 0.0
                for k, label in enumerate(labels):
                    pct = 100 * (r["shares"].get(label, {}).get("share") or 0.0)
                    ax.barh(y, pct, left=left, color=RATING_COLOURS[k % len(RATING_COLOURS)], edgecolor="white",
                            label=label if y == 0 else None)
                    if pct >= 8:
                        ax.text(left + pct / 2, y, f"{pct:.0f}%", ha="center", va="center", fontsize=7)
                    left += pct
            ax.set_xlim(0, 100)
            ax.set_xlabel("% of answers", fontsize=8)
            ax.legend(fontsize=7, ncol=len(labels), loc="lower right", bbox_to_anchor=(1, 1), frameon=False)
        ax.set_yticks(range(len(mine)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{judge} ({scale_name})", fontsize=9, loc="left")
        _plain(ax)
    return _save(fig, path, key)


def bar_labels(rows: list[dict[str, Any]]) -> list[str]:
    """'model vs baseline (n=N)' for each leaderboard bar, with the run's name where that alone would repeat
    (the same model against the same baseline in several runs)."""
    plain = [f"{r['model']} vs {r['baseline']}" for r in rows]
    out = []
    for label, r in zip(plain, rows):
        if plain.count(label) > 1 and r.get("run"):
            label += f" [{r['run']}]"
        out.append(f"{label} (n={r['n']})")
    return out


def leaderboard_figure(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Win rate with its 95% interval, one bar per model, best on top."""
    key = drawn_from("leaderboard", rows, title)
    if is_drawn(path, key):
        return path
    rows = sorted(rows, key=lambda r: -(r["win_rate"] or 0))
    fig = _figure(figsize=(7, 0.9 + 0.3 * len(rows)))
    ax = fig.subplots()
    y = range(len(rows))
    rate = [100 * (r["win_rate"] or 0) for r in rows]
    err = [[100 * ((r["win_rate"] or 0) - (r["win_rate_ci_low"] or 0)) for r in rows],
           [100 * ((r["win_rate_ci_high"] or 0) - (r["win_rate"] or 0)) for r in rows]]
    ax.barh(y, rate, xerr=err, color="#4C9A6A", ecolor="#333", capsize=2)
    ax.set_yticks(list(y), bar_labels(rows), fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.axvline(50, color="#999", lw=0.8, ls="--")
    ax.set_xlabel("win rate % vs baseline (ties half), 95% interval", fontsize=8)
    ax.set_title(title, fontsize=9, loc="left")
    _plain(ax)
    return _save(fig, path, key)


def judges_figure(rows: list[dict[str, Any]], path: Path) -> Path:
    """Each judge's Cohen's kappa with the human majority (95% interval), and the human ceiling as a tick."""
    key = drawn_from("judges", rows)
    if is_drawn(path, key):
        return path
    fig = _figure(figsize=(7, 0.9 + 0.35 * len(rows)))
    ax = fig.subplots()
    y = list(range(len(rows)))
    k = [r["kappa"] or 0 for r in rows]
    err = [[(r["kappa"] or 0) - (r["kappa_ci_low"] if r["kappa_ci_low"] is not None else (r["kappa"] or 0))
            for r in rows],
           [(r["kappa_ci_high"] if r["kappa_ci_high"] is not None else (r["kappa"] or 0)) - (r["kappa"] or 0)
            for r in rows]]
    ax.barh(y, k, xerr=err, color="#4C7A9A", ecolor="#333", capsize=2, label="judge vs human majority")
    ceil = [(i, r["ceiling_kappa"]) for i, r in enumerate(rows) if r.get("ceiling_kappa") is not None]
    if ceil:
        ax.scatter([c for _, c in ceil], [i for i, _ in ceil], marker="|", s=300, color="#C0392B",
                   label="human ceiling")
    ax.set_yticks(y, [f"{r['judge']} ({r['gold']})" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(min(0.0, min(k) - 0.05), 1)
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlabel("Cohen's kappa with the human majority, 95% interval", fontsize=8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)
    _plain(ax)
    return _save(fig, path, key)


def _plain(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _save(fig: Any, path: Path, key: str) -> Path:
    fig.tight_layout()
    return _write(fig, path, key)


def _write(fig: Any, path: Path, key: str) -> Path:
    """The figure as a PNG, written whole or not at all (a killed report leaves no torn image), with the hash of
    what it was drawn from in a text chunk. Saved with the box of everything it holds: laid out at the screen's
    100 dpi and saved at 150, long row labels lost their first letter."""
    buf = io.BytesIO()
    fig.savefig(buf, dpi=150, format="png", bbox_inches="tight", pad_inches=0.05, metadata={DRAWN_FROM: key})
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, buf.getvalue())


def drawn_from(kind: str, rows: list[dict[str, Any]], *more: Any) -> str:
    """The hash a figure is known by: its kind, the rows and settings it is drawn from, and the code that draws
    it (lima-eval's version, this module's source, the installed matplotlib)."""
    return content_id("figure", kind, rows, more, __version__, _code())


def is_drawn(path: Path, key: str) -> bool:
    """Whether the PNG at `path` was drawn from exactly what `key` hashes (then drawing it again would give the
    same image: it is kept, and matplotlib is not imported)."""
    return _png_text(path).get(DRAWN_FROM) == key


@functools.cache
def _code() -> str:
    """This module's source and the installed matplotlib, hashed once per process. matplotlib is known by its
    package file's path, size and modification time: reading its version from the installed metadata took a tenth
    of a second, and importing it is what a kept figure saves."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    origin = spec.origin if spec is not None and spec.origin else ""
    st = Path(origin).stat() if origin else None
    installed = f"{origin}:{st.st_size}:{st.st_mtime_ns}" if st else "-"
    return hashlib.sha256(Path(__file__).read_bytes() + installed.encode()).hexdigest()


def _png_text(path: Path) -> dict[str, str]:
    """A PNG's text chunks before its image data (where they are written); {} for a missing or unreadable file."""
    out: dict[str, str] = {}
    try:
        with Path(path).open("rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return {}
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return out
                size, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):
                    return out
                if kind == b"tEXt":
                    name, _, value = f.read(size).partition(b"\0")
                    out[name.decode("latin-1")] = value.decode("latin-1")
                    f.seek(4, io.SEEK_CUR)  # the chunk's CRC
                else:
                    f.seek(size + 4, io.SEEK_CUR)
    except OSError:
        return {}
