"""LIMA Figure 1 style: stacked horizontal win / tie / loss bars, one panel per judge."""

from __future__ import annotations

from pathlib import Path

from lima_eval.report.metrics import Tally

COLOURS = {"win": "#4C9A6A", "tie": "#C9C9C9", "loss": "#C8553D"}


def winrate_figure(rows: list[Tally], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judges = list(dict.fromkeys(r.judge for r in rows))
    labels = list(dict.fromkeys(f"{r.model}\nvs {r.baseline}" for r in rows))
    height = 1.0 + 0.55 * max(1, len(labels))
    fig, axes = plt.subplots(1, len(judges), figsize=(5.2 * len(judges), height), squeeze=False, sharey=True)
    for ax, judge in zip(axes[0], judges):
        mine = {f"{r.model}\nvs {r.baseline}": r for r in rows if r.judge == judge}
        for y, label in enumerate(labels):
            r = mine.get(label)
            if r is None or r.n == 0:
                ax.text(50, y, "no verdicts" if r is None else f"no verdicts ({r.errors} errors)",
                        ha="center", va="center", fontsize=8, color="#666")
                continue
            left = 0.0
            for key in ("win", "tie", "loss"):
                pct = getattr(r, f"{key}_pct")
                ax.barh(y, pct, left=left, color=COLOURS[key], edgecolor="white",
                        label=key.capitalize() if y == 0 else None)
                if pct >= 7:
                    ax.text(left + pct / 2, y, f"{pct:.0f}%", ha="center", va="center", fontsize=8)
                left += pct
        ax.set_xlim(0, 100)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(judge, fontsize=9)
        ax.set_xlabel("% of prompts (errors excluded)", fontsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[k]) for k in ("win", "tie", "loss")]
    fig.legend(handles, ["Model wins", "Tie", "Baseline wins"], loc="lower center", ncol=3, fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.12 if height < 3 else 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
