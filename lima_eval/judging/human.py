"""Import human labels from CSV.

Pairwise: prompt_id, model_a, model_b, label (a|b|tie), annotator[, comment] -> Judgments.
Ratings:  prompt_id, model, label (fail|pass|excellent or 1-6), annotator[, comment] -> Ratings.
The header says which: a `model` column (and no model_a) means ratings. Each is a HumanFormat class in the import
format registry (judging/formats.py, `human.<name>`), detected by the header in rank order (pairwise, the catch-all,
last): a plugin's CSV layout is recognised the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lima_eval.errors import HumanImportError, InputError
from lima_eval.inputs import csv_rows, shown
from lima_eval.judging.formats import ImportFormat, detect
from lima_eval.lock import writes_run
from lima_eval.records import HUMAN, VERDICTS, Judgment, Rating, content_id
from lima_eval.registry import suggest
from lima_eval.run import Run
from lima_eval.scales import Scale, labelled
from lima_eval.store import RunStore

REQUIRED = ("prompt_id", "model_a", "model_b", "label", "annotator")
RATING_REQUIRED = ("prompt_id", "model", "label", "annotator")
OPTIONAL = ("comment",)


@dataclass
class ImportResult:
    imported: int = 0
    already: int = 0
    skipped: list[str] = field(default_factory=list)
    unlabelled: int = 0  # rows with neither a label nor an annotator yet (a human queue being filled in)


def human_id(prompt_id: str, model_a: str, model_b: str, annotator: str) -> str:
    return content_id("human", prompt_id, sorted([model_a, model_b]), annotator)


def open_csv(path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(rows with the line each starts on, header) of a UTF-8 CSV (BOM allowed), strictly read (inputs.csv_rows)."""
    header, rows = csv_rows(Path(path))
    return rows, header


def _check_header(path: Path, header: list[str], required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}; the header must have "
                               f"{', '.join(required)} (and optionally comment)", line=1, field=missing[0])


def _walk(path: Path, required: tuple[str, ...], problems: list[str],
          unlabelled: list[int]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, stripped values) for each row with every required field; an empty one goes to problems, except a
    row with neither label nor annotator: not labelled yet (a human queue), its line goes to `unlabelled`."""
    rows, header = open_csv(path)
    _check_header(path, header, required)
    for start, row in rows:  # start: the line the row starts on (a quoted field may span lines)
        values = {k: (row.get(k) or "").strip() for k in required + OPTIONAL}
        empty = [k for k in required if not values[k]]
        if set(empty) == {"label", "annotator"}:
            unlabelled.append(start)
            continue
        if empty:
            problems.append(f"line {start}, field '{empty[0]}': empty")
            continue
        yield start, values


class LabelError(ValueError):
    """A label that cannot be stored: the field at fault and why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def pair_label(pid: str, a: str, b: str, label: str, annotator: str, prompt_ids: set[str], models: set[str],
               comment: str | None = None, shown_first: str | None = None) -> Judgment:
    """One person's pairwise label as the run stores it, checked against the run's prompts and models (the
    importer's and the labelling app's one rule); raises LabelError naming the field."""
    if pid not in prompt_ids:
        raise LabelError("prompt_id", f"unknown prompt id '{pid}'{suggest(pid, sorted(prompt_ids))}")
    unknown = [(k, v) for k, v in (("model_a", a), ("model_b", b)) if v not in models]
    if unknown:
        k, v = unknown[0]
        raise LabelError(k, f"unknown model '{v}'{suggest(v, sorted(models))}; the run has "
                            f"{', '.join(sorted(models))}")
    if a == b:
        raise LabelError("model_b", "model_b is the same as model_a")
    verdict = label.strip().lower()
    if verdict not in VERDICTS:
        raise LabelError("label", f"'{label}' is not one of a, b, tie")
    if not annotator.strip() or any(ord(c) < 32 for c in annotator):
        raise LabelError("annotator", f"{shown(annotator)} is not an annotator name")
    return Judgment(id=human_id(pid, a, b, annotator), prompt_id=pid, model_a=a, model_b=b, judge=HUMAN,
                    verdict=verdict, annotator=annotator, comment=comment,  # type: ignore[arg-type]
                    shown_first=shown_first)  # type: ignore[arg-type]


def rating_label(pid: str, model: str, label: str, annotator: str, prompt_ids: set[str], models: set[str],
                 comment: str | None = None, scales: list[Scale] | None = None) -> Rating:
    """One person's rating as the run stores it, checked like pair_label, on the first of `scales` (every scale
    with fixed labels by default) that has the label."""
    if pid not in prompt_ids:
        raise LabelError("prompt_id", f"unknown prompt id '{pid}'{suggest(pid, sorted(prompt_ids))}")
    if model not in models:
        raise LabelError("model", f"unknown model '{model}'{suggest(model, sorted(models))}; the run has "
                                  f"{', '.join(sorted(models))}")
    value = label.strip().lower()
    scales = labelled() if scales is None else scales
    scale = next((s for s in scales if value in s.labels), None)
    if scale is None:
        raise LabelError("label", f"'{label}' is not one of {', or '.join(s.labels_text for s in scales)}")
    if not annotator.strip() or any(ord(c) < 32 for c in annotator):
        raise LabelError("annotator", f"{shown(annotator)} is not an annotator name")
    return Rating(id=content_id("human-rating", pid, model, annotator, scale.name), prompt_id=pid, model=model,
                  judge=HUMAN, label=value, scale=scale.name, score=scale.score(value), annotator=annotator,
                  comment=comment)


def _unquoted(value: str, known: set[str]) -> str:
    """A name as lima-eval wrote it into a CSV: a leading quote keeps a spreadsheet from reading `=x` as a
    formula (report.columns.csv_safe), so `'=x` names `=x` when that is known and `'=x` is not."""
    if value.startswith("'") and value not in known and value[1:] in known:
        return value[1:]
    return value


def _reporter(problems: list[str], line: int) -> Callable[[str, str], None]:
    def bad(fieldname: str, message: str) -> None:
        problems.append(f"line {line}, field '{fieldname}': {message}")
    return bad


def read_labels(path: Path, prompt_ids: set[str], models: set[str], existing: dict[str, Judgment],
                unlabelled: list[int] | None = None) -> tuple[list[Judgment], list[str], int]:
    """Validate every row; return (new judgments, problems, rows already imported)."""
    out: list[Judgment] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    already = 0
    for start, values in _walk(path, REQUIRED, problems, [] if unlabelled is None else unlabelled):
        bad = _reporter(problems, start)
        pid, a, b, label, annotator = (values[k] for k in REQUIRED)
        pid, a, b = _unquoted(pid, prompt_ids), _unquoted(a, models), _unquoted(b, models)
        try:
            j = pair_label(pid, a, b, label, annotator, prompt_ids, models, values["comment"] or None)
        except LabelError as exc:
            bad(exc.field, exc.message)
            continue
        jid = j.id
        if jid in seen:
            bad("annotator", f"duplicate label by '{annotator}' for prompt '{pid}' and {a} vs {b} "
                             f"(first on line {seen[jid]})")
            continue
        seen[jid] = start
        prior = existing.get(jid)
        if prior is not None:
            if prior.winner == j.winner:
                already += 1
                continue
            bad("label", f"'{annotator}' already labelled prompt '{pid}' ({a} vs {b}) differently in an earlier "
                         "import")
            continue
        out.append(j)
    return out, problems, already


def read_rating_labels(path: Path, prompt_ids: set[str], models: set[str], existing: dict[str, Rating],
                       unlabelled: list[int] | None = None) -> tuple[list[Rating], list[str], int]:
    """Validate every row of a ratings CSV; return (new ratings, problems, rows already imported)."""
    out: list[Rating] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    already = 0
    for start, values in _walk(path, RATING_REQUIRED, problems, [] if unlabelled is None else unlabelled):
        bad = _reporter(problems, start)
        pid, model, label, annotator = (values[k] for k in RATING_REQUIRED)
        pid, model = _unquoted(pid, prompt_ids), _unquoted(model, models)
        try:
            r = rating_label(pid, model, label, annotator, prompt_ids, models, values["comment"] or None)
        except LabelError as exc:
            bad(exc.field, exc.message)
            continue
        rid, scale = r.id, r.scale
        if rid in seen:
            bad("annotator", f"duplicate {scale} rating by '{annotator}' for prompt '{pid}' and model {model} "
                             f"(first on line {seen[rid]})")
            continue
        seen[rid] = start
        prior = existing.get(rid)
        if prior is not None:
            if prior.label == r.label:
                already += 1
            else:
                bad("label", f"'{annotator}' already rated prompt '{pid}' ({model}) '{prior.label}' in an earlier "
                             "import")
            continue
        out.append(r)
    return out, problems, already


class HumanFormat(ImportFormat):
    """A kind of labels CSV (`lima-eval import-human`), recognised by its header (`detect` sees it as a list of
    column names): `read` checks every row against the run's prompts and models and `existing` labels; the
    records go to the run's human labels through `append`."""

    family: ClassVar[str] = "human"

    def existing(self, store: RunStore) -> dict[str, Any]:
        """The labels of this kind the run already holds, by id."""
        raise NotImplementedError

    def read(self, path: Path, prompt_ids: set[str], models: set[str], existing: dict[str, Any],
             unlabelled: list[int]) -> tuple[list[Any], list[str], int]:
        """(new records, problems by line, rows already imported); rows not labelled yet go to `unlabelled`."""
        raise NotImplementedError

    def append(self, store: RunStore, records: list[Any]) -> None:
        raise NotImplementedError


class PairwiseLabels(HumanFormat):
    """prompt_id, model_a, model_b, label (a|b|tie), annotator[, comment] -> Judgments; the catch-all."""

    name = "pairwise"
    rank = 1000

    def detect(self, path: Path, first: Any) -> bool:
        return True

    def existing(self, store: RunStore) -> dict[str, Any]:
        return store.judgments(human=True)

    def read(self, path: Path, prompt_ids: set[str], models: set[str], existing: dict[str, Any],
             unlabelled: list[int]) -> tuple[list[Any], list[str], int]:
        return read_labels(path, prompt_ids, models, existing, unlabelled)

    def append(self, store: RunStore, records: list[Any]) -> None:
        store.append_judgments(records, human=True)


class RatingLabels(HumanFormat):
    """prompt_id, model, label (fail|pass|excellent or 1-6), annotator[, comment] -> Ratings."""

    name = "ratings"
    rank = 10

    def detect(self, path: Path, first: Any) -> bool:
        return "model" in first and "model_a" not in first

    def existing(self, store: RunStore) -> dict[str, Any]:
        return store.ratings(human=True)

    def read(self, path: Path, prompt_ids: set[str], models: set[str], existing: dict[str, Any],
             unlabelled: list[int]) -> tuple[list[Any], list[str], int]:
        return read_rating_labels(path, prompt_ids, models, existing, unlabelled)

    def append(self, store: RunStore, records: list[Any]) -> None:
        store.append_ratings(records, human=True)


@writes_run
def import_human(run_dir: Path, path: Path, skip_bad_rows: bool = False) -> ImportResult:
    """Validate the CSV against the run's prompts and models and append the labels to the run."""
    run = Run(run_dir)
    store = run.store
    prompt_ids = {p.id for p in run.prompts}
    models = {m.name for m in run.config.models}
    _, header = open_csv(Path(path))
    kind = detect("human", Path(path), header, HumanFormat)
    if kind is None:
        raise InputError(Path(path), "no labels format recognises this header", line=1)
    unlabelled: list[int] = []
    records, problems, already = kind.read(Path(path), prompt_ids, models, kind.existing(store), unlabelled)
    if problems and not skip_bad_rows:
        raise HumanImportError(Path(path), problems)
    if unlabelled and not records and not already and not problems:
        raise InputError(Path(path), f"no row has a label yet ({len(unlabelled)} rows with an empty label and "
                                     "annotator: a human queue still to be filled in)", line=unlabelled[0],
                         field="label")
    kind.append(store, records)
    return ImportResult(imported=len(records), already=already, skipped=problems, unlabelled=len(unlabelled))
