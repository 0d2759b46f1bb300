"""Gold sets: pairwise items labelled by people, to measure a judge against (`lima-eval judge-card`).

A gold set is named (`pandalm`: PandaLM's 999-item test set with three annotators, downloaded once from its
GitHub home into the cache; `mt-bench-human`: MT-bench's expert votes on the Hugging Face hub), or a path: a file
in PandaLM's format or in the schema of MT-bench's human judgments (FastChat's human_judgments.json), or a
lima-eval run folder that holds human pairwise labels (`lima-eval import-human`), so a
team can rate a judge against its own people.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima_eval.errors import InputError, LimaEvalError, MissingExtraError
from lima_eval.inputs import check_id, json_rows, shown
from lima_eval.resources import download
from lima_eval.run import Run

PANDALM_URL = "https://raw.githubusercontent.com/WeOpenML/PandaLM/main/data/testset-v1.json"
MT_BENCH_HUMAN = "lmsys/mt_bench_human_judgments"
_PANDA = {"0": 0, "1": 1, "2": -1}  # tie, response1 (model_a) better, response2 (model_b) better


@dataclass(frozen=True)
class GoldItem:
    """One human-labelled comparison: verdicts are +1 (model_a's answer better), 0 (tie), -1 (model_b's)."""

    id: str
    prompt: str
    model_a: str
    model_b: str
    answer_a: str
    answer_b: str
    labels: tuple[tuple[str, int], ...]  # (annotator, verdict)

    @property
    def majority(self) -> int:
        """The annotators' majority verdict; a tie where no verdict has more votes than every other."""
        counts = Counter(v for _, v in self.labels).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            return 0
        return counts[0][0]


def load_gold(source: str, limit: int | None = None) -> tuple[str, list[GoldItem]]:
    """(a name for the set, its items) from a gold set name, a PandaLM-format file or a run folder."""
    path = Path(source)
    if path.is_dir():
        items, name = _from_run(path), f"run:{path.name}"
    elif path.exists():
        items, name = _from_file(path), path.stem
    elif source == "pandalm":
        items, name = _from_pandalm(download(PANDALM_URL, "gold", "pandalm-testset-v1.json")), "pandalm"
    elif source == "mt-bench-human":
        items, name = _from_mt_bench_hub(), "mt-bench-human"
    else:
        raise LimaEvalError(f"--gold: '{source}' is neither a gold set (pandalm, mt-bench-human), a file nor a run "
                            "folder")
    items = [i for i in items if i.model_a != i.model_b and i.labels]
    if limit is not None:
        items = items[:limit]
    if not items:
        raise LimaEvalError(f"--gold {source}: no human-labelled pairwise items")
    return name, items


def _from_file(path: Path) -> list[GoldItem]:
    """A gold file: MT-bench's human judgments (rows with conversation_a) or PandaLM's test set format."""
    rows = json_rows(path)
    if rows and isinstance(rows[0][1], dict) and "conversation_a" in rows[0][1]:
        return _mt_bench_items(rows, path)
    return _from_pandalm(path, rows)


def _from_pandalm(path: Path, rows: list[tuple[int, Any]] | None = None) -> list[GoldItem]:
    items = []
    for line, row in json_rows(path) if rows is None else rows:
        if not isinstance(row, dict):
            raise InputError(path, "expected a JSON object", line=line)
        labels = []
        for key in ("annotator1", "annotator2", "annotator3"):
            if key in row:
                value = str(row[key]).strip()
                if value not in _PANDA:
                    raise InputError(path, f"'{row[key]}' is not one of 0 (tie), 1, 2", line=line, field=key)
                labels.append((key, _PANDA[value]))
        if not labels:
            raise InputError(path, "no human label (annotator1..3)", line=line, field="annotator1")
        pair = row.get("cmp_key")
        if not (isinstance(pair, str) and "_" in pair):
            raise InputError(path, "expected model names as 'model1_model2'", line=line, field="cmp_key")
        m1, m2 = pair.split("_", 1)
        for field in ("instruction", "response1", "response2"):
            if isinstance(row.get(field), (bool, int, float)):  # the file has a few bare true / numbers as answers
                row[field] = str(row[field])
            if not isinstance(row.get(field), str):
                raise InputError(path, "missing or not text", line=line, field=field)
        extra = row.get("input")
        prompt = row["instruction"] + (f"\n\n{extra}" if isinstance(extra, str) and extra.strip() else "")
        items.append(GoldItem(id=check_id(row.get("idx", line - 1), path, line, "idx"), prompt=prompt, model_a=m1,
                              model_b=m2, answer_a=row["response1"], answer_b=row["response2"],
                              labels=tuple(labels)))
    return items


def _from_run(folder: Path) -> list[GoldItem]:
    """The human pairwise labels of a lima-eval run, with the answers they compared."""
    run = Run(folder)
    texts = {p.id: p.text for p in run.prompts}
    gens = run.store.generations()
    answers = {(g.prompt_id, g.model): g.text for g in gens.values() if g.error is None and g.turn == 0}
    by_item: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
    for j in run.store.judgments(human=True).values():
        if j.verdict is None:
            continue
        a, b = sorted((j.model_a, j.model_b))
        v = {"a": 1, "b": -1, "tie": 0}[j.verdict] * (1 if j.model_a == a else -1)
        by_item.setdefault((j.prompt_id, a, b), []).append((j.annotator or "human", v))
    items = []
    for (pid, a, b), labels in by_item.items():
        if pid in texts and (pid, a) in answers and (pid, b) in answers:
            items.append(GoldItem(id=f"{pid}:{a}:{b}", prompt=texts[pid], model_a=a, model_b=b,
                                  answer_a=answers[(pid, a)], answer_b=answers[(pid, b)], labels=tuple(labels)))
    return items


def _from_mt_bench_hub() -> list[GoldItem]:
    """MT-bench's expert votes (first turns) from the Hugging Face hub, through `datasets` (extra `hub`)."""
    try:
        import datasets
    except ImportError as exc:
        raise MissingExtraError("datasets", extra="hub") from exc
    try:
        ds: Any = datasets.load_dataset(MT_BENCH_HUMAN, split="human", token=os.environ.get("HF_TOKEN") or None)
    except Exception as exc:
        raise LimaEvalError(f"could not load {MT_BENCH_HUMAN} from the Hugging Face hub: {type(exc).__name__}") from exc
    return _mt_bench_items([(i + 1, dict(row)) for i, row in enumerate(ds)], Path(f"hf://{MT_BENCH_HUMAN}"))


_MT_WINNER = {"model_a": 1, "model_b": -1, "tie": 0, "tie (bothbad)": 0}


def _mt_bench_items(rows: list[tuple[int, Any]], path: Path) -> list[GoldItem]:
    """MT-bench human judgments (question_id, model_a, model_b, winner, judge, conversation_a/_b, turn), one row
    per expert vote, as gold items of the first turn (the second turn's votes need a two-turn judge: skipped).
    The votes on one question and pair of models are one item; rows are checked (errors name line and field)."""
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    for line, row in rows:
        if not isinstance(row, dict):
            raise InputError(path, "expected a JSON object", line=line)
        turn = row.get("turn")
        if not isinstance(turn, int) or isinstance(turn, bool) or turn not in (1, 2):
            raise InputError(path, f"{shown(turn)} is not 1 or 2", line=line, field="turn")
        if turn != 1:
            continue
        for key in ("model_a", "model_b", "judge"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise InputError(path, "missing or not text", line=line, field=key)
        if row.get("winner") not in _MT_WINNER:
            raise InputError(path, f"{shown(row.get('winner'))} is not one of {', '.join(_MT_WINNER)}", line=line,
                             field="winner")
        qid = check_id(row.get("question_id"), path, line, "question_id")
        for key in ("conversation_a", "conversation_b"):
            conv = row.get(key)
            ok = isinstance(conv, list) and len(conv) >= 2 and all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in conv[:2])
            if not ok:
                raise InputError(path, "expected a list of messages, a question and its answer first", line=line,
                                 field=key)
        a, b = sorted((row["model_a"], row["model_b"]))
        sign = 1 if row["model_a"] == a else -1
        item = grouped.setdefault((qid, a, b), {"labels": [], "row": row, "sign": sign})
        item["labels"].append((row["judge"], _MT_WINNER[row["winner"]] * sign))
    items = []
    for (qid, a, b), item in grouped.items():
        row, sign = item["row"], item["sign"]
        conv_a, conv_b = (row["conversation_a"], row["conversation_b"]) if sign == 1 else (
            row["conversation_b"], row["conversation_a"])
        items.append(GoldItem(id=f"{qid}:{a}:{b}", prompt=conv_a[0]["content"], model_a=a, model_b=b,
                              answer_a=conv_a[1]["content"], answer_b=conv_b[1]["content"],
                              labels=tuple(item["labels"])))
    return items
