"""Judge cards on disk (RESULTS/judge-cards/*/judge_card.json, made by `lima-eval judge-card`): what a card is
a card of, and finding a judge's cards. The report reads them; the judge-card command writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lima_eval.config import JudgeSpec
from lima_eval.judging.definitions import load_definition
from lima_eval.judging.items import identity
from lima_eval.records import content_id

CARD, CARD_MD = "judge_card.json", "judge_card.md"


def judge_identity(spec: JudgeSpec) -> str:
    """What a card is a card of: the judge's definition and endpoint (not the run seed or the order setting), so a
    run's report finds the cards of its judges."""
    return content_id("judge-identity", identity(spec, 0), load_definition(spec.name).fingerprint)


def find_cards(results: Path, spec: JudgeSpec) -> list[dict[str, Any]]:
    """The cards of this judge under RESULTS/judge-cards/, largest gold set first (each with its `path`)."""
    key = judge_identity(spec)
    out = []
    for path in sorted((Path(results) / "judge-cards").glob(f"*/{CARD}")):
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(card, dict) and card.get("identity") == key:
            out.append(card | {"path": str(path.parent / CARD_MD)})
    return sorted(out, key=lambda c: -int(c.get("judged") or 0))


