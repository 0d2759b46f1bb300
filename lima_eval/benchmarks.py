"""Prompt sets by name (definitions in benchmarks/<name>/benchmark.yaml), local JSONL/CSV files, HF datasets.

A plugin adds named sets through the entry point group `lima_eval.benchmarks`: its target is a folder holding a
benchmark.yaml (and the data its `file:` names), or a function returning one; a plugin's name takes precedence
over a shipped set of the same name, as a plugin judge does.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from lima_eval.config import BenchmarkSpec, shard_of
from lima_eval.errors import InputError, LimaEvalError, MissingExtraError, UnknownNameError
from lima_eval.inputs import check_id, csv_rows, json_rows
from lima_eval.records import Prompt, content_id
from lima_eval.registry import BENCHMARKS, suggest
from lima_eval.resources import data_dir, download

ID_FIELDS = ("id", "prompt_id", "question_id", "lima_test_index")
TEXT_FIELDS = ("prompt", "instruction", "question", "text", "conversations", "turns")


def available() -> dict[str, Path]:
    """Registered benchmark names (plugins', then the shipped ones) -> their definition folder."""
    found: dict[str, Path] = {}
    for name in BENCHMARKS.names():
        target = BENCHMARKS.load(name)
        found[name] = Path(target() if callable(target) else target)
    for p in sorted(data_dir("benchmarks").glob("*/benchmark.yaml")):
        found.setdefault(p.parent.name, p.parent)
    return found


def definition(name: str) -> dict[str, Any]:
    folders = available()
    if name not in folders:
        raise UnknownNameError(
            f"unknown benchmark '{name}'{suggest(name, list(folders))}; known: {', '.join(folders)}"
            " (or give benchmark.path to a JSONL/CSV file)"
        )
    path = folders[name] / "benchmark.yaml"
    if not path.is_file():
        raise LimaEvalError(f"benchmark '{name}': {path} not found (a plugin's target must be a folder holding "
                            "benchmark.yaml, or a function returning one)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data["_folder"] = folders[name]
    return data


IMPORTED = "imported"


def load_prompts(spec: BenchmarkSpec) -> list[Prompt]:
    """The prompts of a benchmark, in file order, capped at spec.limit."""
    if spec.name == IMPORTED and not spec.path:
        return []  # a run made by `lima-eval import-judgments`: the labels name their own prompts
    if spec.path:
        d = definition(spec.name) if spec.name in available() else {}
        prompts = load_prompt_file(Path(spec.path), id_field=d.get("id_field"), where=d.get("where"),
                                   tags=tuple(d.get("tags") or ()))
    else:
        d = definition(spec.name)
        shape: dict[str, Any] = {"where": d.get("where"), "tags": tuple(d.get("tags") or ())}
        if d.get("file"):
            prompts = load_prompt_file(d["_folder"] / d["file"], **shape)
        elif d.get("url"):  # a public file, downloaded once into the cache
            name = f"{spec.name}{Path(str(d['url'])).suffix or '.json'}"
            prompts = load_prompt_file(download(str(d["url"]), "benchmarks", name), id_field=d.get("id_field"),
                                       **shape)
        elif d.get("hf_dataset"):
            prompts = _load_hf(d["hf_dataset"], d.get("hf_split", "test"), d.get("hf_id_field"))
        else:
            raise LimaEvalError(f"benchmark '{spec.name}' defines neither a file nor an hf_dataset")
    if spec.references:
        prompts = with_references(prompts, spec)
    if spec.limit is not None:  # before the shard: the shards together are the limited run
        prompts = prompts[: spec.limit]
    if spec.shard:
        i, n = shard_of(spec.shard, "benchmark.shard")  # a stable hash of the id picks each machine's share
        prompts = [p for p in prompts if int(content_id("shard", p.id), 16) % n == i - 1]
        if not prompts:
            raise LimaEvalError(f"benchmark shard {i}/{n} has no prompts (fewer prompts than shards?)")
        return prompts
    if not prompts:
        raise LimaEvalError(f"benchmark '{spec.name}' has no prompts")
    return prompts


def _text_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]  # first user turn of a conversation
    return None


def _id_field(row: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    return next((f for f in fields if f in row and row[f] not in (None, "")), None)


def _prompt_from_row(row: dict[str, Any], index: int, path: Path, line: int, id_field: str | None,
                     by_index: bool = False) -> Prompt:
    """One prompt. Its id comes from the row's id field; only a file where no row has one (AlpacaEval's eval
    set) is numbered by row (by_index)."""
    fields = (id_field,) if id_field else ID_FIELDS
    found = _id_field(row, fields)
    if found is None and not by_index:
        raise InputError(path, "missing prompt id (other rows have one)" if not id_field else "missing prompt id",
                         line=line, field=id_field or "id")
    pid = check_id(row[found], path, line, found) if found is not None else str(index)
    text_key = next((f for f in TEXT_FIELDS if f in row), None)
    if text_key is None:
        raise InputError(path, f"no prompt text (expected one of: {', '.join(TEXT_FIELDS)})", line=line)
    text = _text_of(row[text_key])
    if not text or not text.strip():
        raise InputError(path, "empty prompt text", line=line, field=text_key)
    tags = row.get("tags") or ()
    if isinstance(tags, str):
        tags = tuple(t for t in tags.split(";") if t)
    turns: tuple[str, ...] = ()
    value = row[text_key]
    if text_key in ("turns", "prompt") and isinstance(value, list) and len(value) > 1:
        turns = tuple(str(t) for t in value)  # user turns of a multi-turn prompt (MT-bench)
    ref = row.get("reference")
    if ref is not None and not (isinstance(ref, str)
                                or (isinstance(ref, list) and all(isinstance(x, str) for x in ref))):
        raise InputError(path, "expected a reference answer (text) or one per turn (a list of texts)", line=line,
                         field="reference")
    reference = (ref,) if isinstance(ref, str) else tuple(ref or ())
    checklist = row.get("checklist") or []
    if not isinstance(checklist, list) or not all(isinstance(x, str) and x.strip() for x in checklist):
        raise InputError(path, "expected a list of criteria (texts)", line=line, field="checklist")
    rubric = row.get("rubric") or ""
    if isinstance(rubric, dict):  # {score: description}, as Prometheus writes it
        rubric = "\n".join(f"{k}: {v}" for k, v in rubric.items())
    if not isinstance(rubric, str):
        raise InputError(path, "expected the rubric as text or a mapping of score to description", line=line,
                         field="rubric")
    return Prompt(id=str(pid), text=text, category=str(row.get("category") or ""), tags=tuple(tags), turns=turns,
                  reference=reference, checklist=tuple(checklist), rubric=rubric)


def load_prompt_file(path: Path, id_field: str | None = None, where: dict[str, Any] | None = None,
                     tags: tuple[str, ...] = ()) -> list[Prompt]:
    """Prompts from JSONL (one object a line) or CSV (header with an id and a prompt column). A benchmark
    definition may keep only the rows `where` its fields have the given values, and add `tags` to every prompt."""
    rows: list[tuple[int, Any]]
    if path.suffix.lower() == ".csv":
        header, csv_lines = csv_rows(path)
        if "prompt" not in header:
            raise InputError(path, "CSV needs a header with at least a 'prompt' column", line=1, field="prompt")
        rows = list(csv_lines)
    else:  # JSONL, or a JSON list (AlpacaEval's files: "line" is then the item number)
        rows = json_rows(path)
        for line_no, obj in rows:
            if not isinstance(obj, dict):
                raise InputError(path, "expected a JSON object", line=line_no)
    if where:
        rows = [(n, row) for n, row in rows if all(str(row.get(k)) == str(v) for k, v in where.items())]
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    by_index = id_field is None and not any(_id_field(row, ID_FIELDS) for _, row in rows)
    for index, (line_no, row) in enumerate(rows):
        p = _prompt_from_row(row, index, path, line_no, id_field, by_index)
        if p.id in seen:
            raise InputError(path, f"duplicate prompt id '{p.id}' (first on line {seen[p.id]})", line=line_no,
                             field="id")
        seen[p.id] = line_no
        prompts.append(p if not tags else dataclasses.replace(p, tags=tuple(dict.fromkeys(p.tags + tags))))
    return prompts


def _load_hf(name: str, split: str, id_field: str | None = None) -> list[Prompt]:
    """Load a (possibly gated) Hugging Face dataset; HF_TOKEN from the environment is used by `datasets`."""
    try:
        import datasets
    except ImportError as exc:
        raise MissingExtraError("datasets", extra="hub") from exc
    try:
        ds = datasets.load_dataset(name, split=split, token=os.environ.get("HF_TOKEN") or None)
    except Exception as exc:  # network, auth, gating: all surface as one message
        raise LimaEvalError(
            f"could not load Hugging Face dataset {name} ({split}): {type(exc).__name__}. It may be gated: accept "
            "its terms, set HF_TOKEN, or give benchmark.path to a local copy"
        ) from exc
    where = f"{name} ({split})"
    return [_prompt_from_row(dict(row), index, Path(where), index + 1, id_field) if id_field
            else _prompt_from_row({k: v for k, v in dict(row).items() if k not in ID_FIELDS}, index, Path(where),
                                  index + 1, None, by_index=True)
            for index, row in enumerate(ds)]


def with_references(prompts: list[Prompt], spec: BenchmarkSpec) -> list[Prompt]:
    """Prompts with the reference answers of `spec.references`: a JSONL in MT-bench's reference_answer format
    ({question_id, choices: [{turns: [...]}]}) or of {id, reference}; `default` is the benchmark definition's
    `references_url` (downloaded once). Prompts the file does not cover keep theirs (or none)."""
    source = str(spec.references)
    if source == "default":
        url = definition(spec.name).get("references_url") if spec.name in available() else None
        if not url:
            raise LimaEvalError(f"benchmark.references: 'default' needs a benchmark with a references_url; "
                                f"'{spec.name}' has none")
        path = download(str(url), "benchmarks", f"{spec.name}-references.jsonl")
    else:
        path = Path(source)
    refs: dict[str, tuple[str, ...]] = {}
    for line, row in json_rows(path):
        if not isinstance(row, dict):
            raise InputError(path, "expected a JSON object", line=line)
        key = "question_id" if "question_id" in row else "id"
        pid = check_id(row.get(key), path, line, key)
        if "choices" in row:
            choices = row["choices"]
            turns = (choices[0].get("turns") if isinstance(choices, list) and choices and isinstance(choices[0], dict)
                     else None)
            if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
                raise InputError(path, "expected choices[0].turns as a list of texts", line=line, field="choices")
            refs[pid] = tuple(turns)
        else:
            ref = row.get("reference")
            if isinstance(ref, str):
                refs[pid] = (ref,)
            elif isinstance(ref, list) and all(isinstance(x, str) for x in ref):
                refs[pid] = tuple(ref)
            else:
                raise InputError(path, "expected a reference answer (text or a list of texts)", line=line,
                                 field="reference")
    return [dataclasses.replace(p, reference=refs[p.id]) if p.id in refs else p for p in prompts]
