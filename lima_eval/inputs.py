"""Reading users' JSON inputs with errors that name the file and line (shared by prompts, answers, SFT data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lima_eval.errors import InputError


def json_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, value) for each line of a JSONL file, or (item number, value) for a JSON list (.json)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not valid JSON ({exc.msg})", line=exc.lineno) from exc
        if not isinstance(data, list):
            raise InputError(path, "expected a JSON list")
        return [(i + 1, r) for i, r in enumerate(data)]
    rows = []
    with path.open(encoding="utf-8-sig") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InputError(path, f"not valid JSON ({exc.msg})", line=n) from exc
    return rows
