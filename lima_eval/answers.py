"""Import answers written elsewhere as Generations, so real baselines are compared without regenerating them.

Formats: AlpacaEval `model_outputs.json` (a JSON list of {instruction, output}), MT-bench
`model_answer/<model>.jsonl` ({question_id, choices: [{turns: [...]}]}), and plain JSONL
({prompt_id or prompt, answer}); the format is detected (AlpacaEval's instruction/output rows in JSONL too).
Prompts are matched by id, or by text with whitespace normalised; rows that match no prompt of the run are
reported with their line numbers and skipped (a file that matches none is refused); malformed rows stop the
import (nothing written). In a real run the model must be in its config with `backend: imported`, so the run
never tries to generate for it; a new folder, or a run made by imports, gets the model (and the file's new
prompt texts) added, with no config to write first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima_eval.config import IMPORTED, from_resolved, to_plain
from lima_eval.errors import ConfigError, InputError
from lima_eval.inputs import check_id, json_rows
from lima_eval.judging.foreign import text_key
from lima_eval.lock import writes_run
from lima_eval.records import Generation, Prompt, content_id
from lima_eval.run import Run
from lima_eval.store import CONFIG, RunStore, append_jsonl, read_jsonl


@dataclass
class AnswerImport:
    imported: int = 0
    already: int = 0
    unmatched: list[str] = field(default_factory=list)


def detect_format(path: Path, first: Any) -> str:
    """alpaca-eval for a JSON list or rows of instruction + output; mt-bench for rows with choices; else jsonl."""
    if path.suffix.lower() == ".json":
        return "alpaca-eval"
    if isinstance(first, dict) and "choices" in first:
        return "mt-bench"
    if isinstance(first, dict) and "instruction" in first and "output" in first and "answer" not in first:
        return "alpaca-eval"
    return "jsonl"


def _imports_run(run_dir: Path, rows: list[tuple[int, Any]], fmt: str, path: Path, model: str
                 ) -> tuple[Any, list[Prompt], list[dict[str, str]]] | None:
    """For a new folder or a run made by imports (benchmark `imported`): its config with `model` among its
    imported models, its prompts grown by the file's new prompt texts, and the rows to add to RUN/prompts.jsonl.
    None for a real run (its prompts and models are its config's). Nothing is written here."""
    store = RunStore(run_dir)
    data = store.read_config() if (store.root / CONFIG).exists() else None
    if data is not None and (data.get("benchmark") or {}).get("name") != IMPORTED:
        return None
    prompts_path = store.root / "prompts.jsonl"
    known = [(str(r["id"]), str(r.get("prompt", ""))) for r in read_jsonl(prompts_path) if "id" in r]
    by_key = {text_key(t): pid for pid, t in known}
    ids = {pid for pid, _ in known}
    added: list[dict[str, str]] = []
    for line, row in rows:
        pid, text, _ = _answers(fmt, row, path, line)
        if text is None or not text.strip() or text_key(text) in by_key or (pid is not None and pid in ids):
            continue
        new_id = pid if pid is not None else (
            str(line - 1) if str(line - 1) not in ids else content_id("prompt-text", text_key(text))[:12])
        ids.add(new_id)
        by_key[text_key(text)] = new_id
        added.append({"id": new_id, "prompt": text})
    base = data or {"name": run_dir.name, "output_dir": str(run_dir.parent), "round_robin": True, "baselines": []}
    models = list(base.get("models") or [])
    if model not in [m.get("name") for m in models if isinstance(m, dict)]:
        models.append({"name": model, "backend": IMPORTED, "model": f"imported:{model}"})
    cfg = from_resolved(base | {"models": models, "benchmark": {"name": IMPORTED, "path": str(prompts_path)}},
                        str(store.root / CONFIG))
    prompts = [Prompt(id=pid, text=text) for pid, text in known] + [Prompt(id=r["id"], text=r["prompt"]) for r in added]
    return cfg, prompts, added


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
        return check_id(need("question_id", (int, str)), path, line, "question_id"), None, turns
    pid = row.get("prompt_id")
    text = row.get("prompt")
    if pid is None and not isinstance(text, str):
        raise InputError(path, "needs prompt_id or prompt", line=line, field="prompt_id")
    return (check_id(pid, path, line, "prompt_id") if pid is not None else None), text, [need("answer", str)]


@writes_run
def import_answers(run_dir: Path, path: Path, model: str, fmt: str = "auto") -> AnswerImport:
    real = Run(run_dir) if _is_real_run(Path(run_dir)) else None
    if real is not None:
        real.config.model(model)  # a real run: an unknown model is named before the file is read
    rows = json_rows(Path(path))
    if fmt == "auto":
        fmt = detect_format(Path(path), rows[0][1] if rows else None)
    prepared = None if real is not None else _imports_run(Path(run_dir), rows, fmt, Path(path), model)
    if prepared is not None:
        run = Run(run_dir, prepared[0], prepared[1])
    else:
        assert real is not None
        run = real
    store, cfg = run.store, run.config
    spec = cfg.model(model)
    if not spec.imported:
        raise ConfigError(f"model '{model}' has backend '{spec.backend}'; set `backend: imported` for it in the run "
                          "config so the run uses the imported answers instead of generating")
    prompts = run.prompts
    by_id = {p.id: p for p in prompts}
    by_text: dict[str, list[Prompt]] = {}  # a text may be several prompts' (Just-Eval repeats a few): in order
    for p in prompts:
        by_text.setdefault(text_key(p.text), []).append(p)
    ident = cfg.generation_identity(spec)
    existing = store.generations()
    result, records, seen = AnswerImport(), [], set()
    for line, row in rows:
        pid, text, answers = _answers(fmt, row, Path(path), line)
        if pid is not None:
            prompt: Prompt | None = by_id.get(pid)
        else:
            same = by_text.get(text_key(text or ""), [])
            prompt = next((q for q in same if q.id not in seen), same[0] if same else None)
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
    if prepared is not None:  # a run made by imports: its config and prompts grow with this file
        store.write_config(to_plain(cfg))
        append_jsonl(store.root / "prompts.jsonl", prepared[2])
    store.append_generations(records)
    result.imported = len(records)
    return result


def _is_real_run(run_dir: Path) -> bool:
    """Whether run_dir holds a run config whose prompts are a benchmark's (not one made by imports)."""
    if not (run_dir / CONFIG).exists():
        return False
    data = RunStore(run_dir).read_config()
    return (data.get("benchmark") or {}).get("name") != IMPORTED
