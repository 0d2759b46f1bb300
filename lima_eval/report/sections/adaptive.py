"""Adaptive judging (stop_when_decided): per pair, how many prompts it took and whether it was decided."""

from __future__ import annotations

from typing import Any

from lima_eval.judging.adaptive import stop_note, stop_rows
from lima_eval.report.sections import Context, Section


class Adaptive(Section):
    key, title, rank, place = "adaptive", "Adaptive judging", 90, 200

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        return [row for g in ctx.groups if g.spec.stop_when_decided is not None and not g.definition.is_rating
                for row in stop_rows(g.spec, g.label, g.judgments, len(ctx.prompts))]

    def notes(self, data: list[dict[str, Any]], ctx: Context) -> list[tuple[int, str]]:
        return [(20, stop_note(r)) for r in data]
