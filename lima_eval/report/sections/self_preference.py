"""Self-preference: a judge of the same family as a model it judges, and what the other judges say."""

from __future__ import annotations

from typing import Any

from lima_eval.report.sections import Context, Section
from lima_eval.report.selfpref import note, self_preference


class SelfPreference(Section):
    key, title, rank, place = "self_preference", "Self-preference", 80, 200

    def compute(self, ctx: Context) -> list[dict[str, Any]]:
        cfg, _ = ctx.run
        return self_preference(cfg, ctx.inp.judgments,
                               {g.label: g.spec for g in ctx.groups if not g.definition.is_rating})

    def notes(self, data: list[dict[str, Any]], ctx: Context) -> list[tuple[int, str]]:
        return [(70, note(e)) for e in data]
