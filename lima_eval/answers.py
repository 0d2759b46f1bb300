"""Import answers written elsewhere as Generations, so real baselines are compared without regenerating them.

Formats: AlpacaEval `model_outputs.json` (a JSON list of {instruction, output}), MT-bench
`model_answer/<model>.jsonl` ({question_id, choices: [{turns: [...]}]}), and plain JSONL
({prompt_id or prompt, answer}). Prompts are matched by id, or by exact text; rows that match no prompt of
the run are reported with their line numbers and skipped; malformed rows stop the import (nothing written).
The model must be in the run config with `backend: imported`, so the run never tries to generate for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima_eval.config import IMPORTED
from lima_eval.errors import ConfigError, InputError
from lima_eval.inputs import json_rows
from lima_eval.lock import writes_run
from lima_eval.records import Generation, Prompt


@dataclass
class AnswerImport:
    imported: int = 0
    already: int = 0
    unmatched: list[str] = field(default_factory=list)


def detect_format(path: Path, first: Any) -> str:
    if path.suffix.lower() == ".json":
        return "alpaca-eval"
    return "mt-bench" if isinstance(first, dict) and "choices" in first else "jsonl"


def _answers(fmt: str, row: Any, path: Path, line: int) -> tuple[str | None, str | None, list[str]]:
    """(prompt id, prompt text, answers by turn) of one row."""
    if not isinstance(row, dict):
        raise InputError(path, "expected a JSON object", line=line)

    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(row.get(key), kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise InputError(path, f"missing or not a {names}", line=line, field=key)
        return row[key]

    if fmt == "alpaca-eval":
        return None, need("instruction", str), [need("output", str)]
    if fmt == "mt-bench":
        choices = need("choices", list)
        turns = choices[0].get("turns") if choices and isinstance(choices[0], dict) else None
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise InputError(path, "expected choices[0].turns as a list of strings", line=line, field="choices")
        return str(need("question_id", (int, str))), None, turns
    pid = row.get("prompt_id")
    text = row.get("prompt")
    if pid is None and not isinstance(text, str):
        raise InputError(path, "needs prompt_id or prompt", line=line, field="prompt_id")
    return (str(pid) if pid is not None else None), text, [need("answer", str)]


@writes_run
def import_answers(run_dir: Path, path: Path, model: str, fmt: str = "auto") -> AnswerImport:
    from lima_eval.run import Run

    run = Run(run_dir)
    store, cfg = run.store, run.config
    spec = cfg.model(model)
    if not spec.imported:
        raise ConfigError(f"model '{model}' has backend '{spec.backend}'; set `backend: imported` for it in the run "
                          "config so the run uses the imported answers instead of generating")
    prompts = run.prompts
    by_id = {p.id: p for p in prompts}
    by_text = {p.text.strip(): p for p in prompts}
    rows = json_rows(Path(path))
    if fmt == "auto":
        fmt = detect_format(Path(path), rows[0][1] if rows else None)
    ident = cfg.generation_identity(spec)
    existing = store.generations()
    result, records, seen = AnswerImport(), [], set()
    for line, row in rows:
        pid, text, answers = _answers(fmt, row, Path(path), line)
        prompt: Prompt | None = by_id.get(pid) if pid is not None else by_text.get((text or "").strip())
        if prompt is None:
            result.unmatched.append(f"line {line}: no prompt of the run has "
                                    + (f"id '{pid}'" if pid is not None else "this text"))
            continue
        if prompt.id in seen:
            raise InputError(path, f"a second answer for prompt '{prompt.id}'", line=line)
        seen.add(prompt.id)
        for turn, answer in enumerate(answers[: len(prompt.user_turns)]):
            gid = Generation.make_id(prompt, model, ident, turn)
            if gid in existing and existing[gid].text == answer and not existing[gid].error:
                result.already += 1
                continue
            records.append(Generation(id=gid, prompt_id=prompt.id, model=model, text=answer, backend=IMPORTED,
                                      sampling={"source": str(path), "format": fmt}, finish_reason="imported",
                                      turn=turn))
    if result.unmatched and len(result.unmatched) == len(rows):
        raise InputError(path, f"no row matches a prompt of the run ({len(rows)} rows; the first: "
                               f"{result.unmatched[0]}); nothing imported")
    store.append_generations(records)
    result.imported = len(records)
    return result
