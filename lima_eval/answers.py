"""Import answers written elsewhere as Generations, so real baselines are compared without regenerating them.

Formats are AnswersFormat classes in the import format registry (judging/formats.py), a plugin's beside the
built-ins: AlpacaEval `model_outputs.json` (a JSON list of {instruction, output}), MT-bench
`model_answer/<model>.jsonl` ({question_id, choices: [{turns: [...]}]}), and plain JSONL
({prompt_id or prompt, answer}); `auto` detects it (AlpacaEval's instruction/output rows in JSONL too).
Prompts are matched by id, or by text with whitespace normalised; rows that match no prompt of the run are
reported with their line numbers and skipped (a file that matches none is refused); malformed rows stop the
import (nothing written). In a real run the model must be in its config with `backend: imported`, so the run
never tries to generate for it; a new folder, or a run made by imports, gets the model (and the file's new
prompt texts) added, with no config to write first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lima_eval.config import IMPORTED, from_resolved
from lima_eval.errors import ConfigError, InputError
from lima_eval.inputs import check_id, json_rows
from lima_eval.judging.foreign import imported_config, text_key
from lima_eval.judging.formats import ImportFormat, detect, get
from lima_eval.lock import writes_run
from lima_eval.records import Generation, Prompt, content_id
from lima_eval.run import Run
from lima_eval.store import CONFIG, RunStore, append_jsonl, read_jsonl

AUTO = "auto"  # --format auto: the first answers format (in rank order) that recognises the file


@dataclass
class AnswerImport:
    imported: int = 0
    already: int = 0
    unmatched: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    """One row of an answers file: the prompt it answers (by id, else by text) and the answer to each turn."""

    line: int
    prompt_id: str | None
    text: str | None
    turns: tuple[str, ...]


class AnswersFormat(ImportFormat):
    """A kind of answers file (`lima-eval import-answers --format NAME`): `rows` reads the file (JSON rows by
    default), `read` turns them into Answers; `detect` sees the first JSON row (None if the file is not JSON)."""

    family: ClassVar[str] = "answers"

    def rows(self, path: Path) -> list[tuple[int, Any]]:
        """(line, row) for each row of the file."""
        return json_rows(path)

    def read(self, path: Path, rows: list[tuple[int, Any]]) -> list[Answer]:
        """Every row as an Answer; a malformed row is an InputError naming its line and field."""
        raise NotImplementedError


def _need(row: Any, key: str, kind: type | tuple[type, ...], path: Path, line: int) -> Any:
    if not isinstance(row, dict):
        raise InputError(path, "expected a JSON object", line=line)
    if not isinstance(row.get(key), kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise InputError(path, f"missing or not a {names}", line=line, field=key)
    return row[key]


class AlpacaEvalAnswers(AnswersFormat):
    """AlpacaEval's model_outputs.json: a JSON list of {instruction, output} (rows of it in JSONL too)."""

    name = "alpaca-eval"
    rank = 10

    def detect(self, path: Path, first: Any) -> bool:
        return path.suffix.lower() == ".json" or (
            isinstance(first, dict) and "instruction" in first and "output" in first
            and "answer" not in first and "choices" not in first)

    def read(self, path: Path, rows: list[tuple[int, Any]]) -> list[Answer]:
        return [Answer(n, None, _need(row, "instruction", str, path, n), (_need(row, "output", str, path, n),))
                for n, row in rows]


class MTBenchAnswers(AnswersFormat):
    """MT-bench's model_answer/<model>.jsonl: {question_id, choices: [{turns: [...]}]}."""

    name = "mt-bench"
    rank = 20

    def detect(self, path: Path, first: Any) -> bool:
        return isinstance(first, dict) and "choices" in first

    def read(self, path: Path, rows: list[tuple[int, Any]]) -> list[Answer]:
        out = []
        for n, row in rows:
            choices = _need(row, "choices", list, path, n)
            turns = choices[0].get("turns") if choices and isinstance(choices[0], dict) else None
            if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
                raise InputError(path, "expected choices[0].turns as a list of strings", line=n, field="choices")
            out.append(Answer(n, check_id(_need(row, "question_id", (int, str), path, n), path, n, "question_id"),
                              None, tuple(turns)))
        return out


class JsonlAnswers(AnswersFormat):
    """Plain JSONL: {prompt_id or prompt, answer}; the catch-all of --format auto."""

    name = "jsonl"
    rank = 1000

    def detect(self, path: Path, first: Any) -> bool:
        return True

    def read(self, path: Path, rows: list[tuple[int, Any]]) -> list[Answer]:
        out = []
        for n, row in rows:
            if not isinstance(row, dict):
                raise InputError(path, "expected a JSON object", line=n)
            pid, text = row.get("prompt_id"), row.get("prompt")
            if pid is None and not isinstance(text, str):
                raise InputError(path, "needs prompt_id or prompt", line=n, field="prompt_id")
            out.append(Answer(n, check_id(pid, path, n, "prompt_id") if pid is not None else None, text,
                              (_need(row, "answer", str, path, n),)))
        return out


def read_answers(path: Path, fmt: str = AUTO) -> tuple[AnswersFormat, list[Answer]]:
    """The file's answers format (`auto`: detected) and its rows as Answers; nothing is written."""
    if fmt != AUTO:
        chosen = get("answers", fmt, AnswersFormat)
        return chosen, chosen.read(path, chosen.rows(path))
    try:
        rows: list[tuple[int, Any]] | None = json_rows(path)
    except InputError:
        rows = None  # not JSON rows: a plugin's format may know the file, else the catch-all says what is wrong
    found = detect("answers", path, rows[0][1] if rows else None, AnswersFormat)
    if found is None:
        raise InputError(path, "no answers format recognises this file; name one with --format")
    if rows is None or type(found).rows is not AnswersFormat.rows:  # it reads the file its own way
        rows = found.rows(path)
    return found, found.read(path, rows)


def _imports_run(run_dir: Path, answers: list[Answer], model: str
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
    for a in answers:
        pid, text, line = a.prompt_id, a.text, a.line
        if text is None or not text.strip() or text_key(text) in by_key or (pid is not None and pid in ids):
            continue
        new_id = pid if pid is not None else (
            str(line - 1) if str(line - 1) not in ids else content_id("prompt-text", text_key(text))[:12])
        ids.add(new_id)
        by_key[text_key(text)] = new_id
        added.append({"id": new_id, "prompt": text})
    base = (data or {"round_robin": True, "baselines": []}) | {"name": run_dir.name, "output_dir": str(run_dir.parent)}
    models = list(base.get("models") or [])
    if model not in [m.get("name") for m in models if isinstance(m, dict)]:
        models.append({"name": model, "backend": IMPORTED, "model": f"imported:{model}"})
    cfg = from_resolved(base | {"models": models, "benchmark": {"name": IMPORTED, "path": str(prompts_path)}},
                        str(store.root / CONFIG))
    prompts = [Prompt(id=pid, text=text) for pid, text in known] + [Prompt(id=r["id"], text=r["prompt"]) for r in added]
    return cfg, prompts, added


@writes_run
def import_answers(run_dir: Path, path: Path, model: str, fmt: str = AUTO) -> AnswerImport:
    """Add MODEL's answers from a file (in format `fmt`, or detected) to a run as Generations."""
    real = Run(run_dir) if _is_real_run(Path(run_dir)) else None
    if real is not None:
        real.config.model(model)  # a real run: an unknown model is named before the file is read
    found, answers = read_answers(Path(path), fmt)
    prepared = None if real is not None else _imports_run(Path(run_dir), answers, model)
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
    generation_id = cfg.generation_ids(spec)
    existing = store.generations()
    result, records, seen = AnswerImport(), [], set()
    for a in answers:
        pid, text, line = a.prompt_id, a.text, a.line
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
        for turn, answer in enumerate(a.turns[: len(prompt.user_turns)]):
            gid = generation_id(prompt, turn)
            if gid in existing and existing[gid].text == answer and not existing[gid].error:
                result.already += 1
                continue
            records.append(Generation(id=gid, prompt_id=prompt.id, model=model, text=answer, backend=IMPORTED,
                                      sampling={"source": str(path), "format": found.name}, finish_reason="imported",
                                      turn=turn))
    if result.unmatched and len(result.unmatched) == len(answers):
        raise InputError(path, f"no row matches a prompt of the run ({len(answers)} rows; the first: "
                               f"{result.unmatched[0]}); nothing imported")
    if prepared is not None:  # a run made by imports: its config and prompts grow with this file
        store.write_config(imported_config(cfg))
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
