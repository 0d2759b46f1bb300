"""The run directory: resolved config, one JSONL per stage with crash-safe appends, and the report."""

from __future__ import annotations

import gc
import json
import logging
import operator
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lima_eval.errors import InputError, StoreError
from lima_eval.inputs import load_yaml, read_text
from lima_eval.records import Generation, Judgment, Rating, from_dicts, to_dict

log = logging.getLogger(__name__)
R = TypeVar("R", Generation, Judgment, Rating)

GENERATIONS = "generations.jsonl"
JUDGMENTS = "judgments.jsonl"
HUMAN = "human_judgments.jsonl"
RATINGS = "ratings.jsonl"
HUMAN_RATINGS = "human_ratings.jsonl"
IMPORTED = "imported_judgments.jsonl"  # foreign judgment files (lima-eval import-judgments)
IMPORTED_RATINGS = "imported_ratings.jsonl"  # foreign grades (MT-bench single-answer grading)
CONFIG = "config.yaml"
WITHDRAWN = "withdrawn"  # error_kind of a person's label taken back (the labelling app's undo): not a label
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would read as a formula (=, +, -, @, tab, CR first) gets a leading quote;
    numbers stay numbers. Model and judge names come from users' configs and files (every CSV a run writes)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write a whole file under a temporary name beside it, then rename it into place: a kill leaves the old file
    or the new one, never a torn or empty one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _repair_tail(path: Path) -> int:
    """Drop a torn last line (a write cut off by a crash); return how many bytes were dropped."""
    try:
        with path.open("rb") as f:  # the last byte says it all, in the common case
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return 0
    except FileNotFoundError:
        return 0
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    log.warning("%s: dropping a torn last line (%d bytes) left by an interrupted run", path, len(data) - cut)
    with path.open("r+b") as f:
        f.truncate(cut)
    return len(data) - cut


def _parse_whole(data: bytes) -> list[Any] | None:
    """A whole JSONL file's objects, parsed as JSON arrays of a few MB of lines each (several times faster than
    a json.loads per line on a large run, and faster than one array of the whole file, whose copies of a
    file of hundreds of MB cost more than the parse); None when a chunk does not parse (a blank or bad line,
    not an object: the caller's line-by-line reading says which)."""
    out: list[Any] = []
    start, n = 0, len(data)
    try:
        while start < n:
            end = data.find(b"\n", min(start + _CHUNK, n - 1)) + 1 or n
            chunk = data[start:end - 1]
            try:
                objs = json.loads(b"[" + chunk.replace(b"\n", b",") + b"]")
            except json.JSONDecodeError:  # blank lines in the chunk?
                objs = json.loads(b"[" + b",".join(x for x in chunk.split(b"\n") if x.strip()) + b"]")
            out += objs
            start = end
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return out if all(map(dict.__instancecheck__, out)) else None


_CHUNK = 1 << 22


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file; a torn (unterminated) last line is skipped with a warning."""
    yield from _read(path, whole=False)


def read_jsonl_list(path: Path) -> list[dict[str, Any]]:
    """read_jsonl's objects as one list (a large run's files: no generator step per record)."""
    return list(_read(path, whole=True))


def _read(path: Path, whole: bool) -> Iterable[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open("rb") as f:
        data = f.read()
    if data.endswith(b"\n"):
        # The common case, a whole file, parsed at once; any problem falls through to the line-by-line reading
        # below, which names the line.
        objs = _parse_whole(data)
        if objs is not None:
            return objs
    return _lines(path, data)


def _lines(path: Path, data: bytes) -> Iterator[dict[str, Any]]:
    lines = data.split(b"\n")
    last = len(lines) - 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            if number - 1 == last:  # no newline after it: a torn write
                log.warning("%s, line %d: ignoring a torn last line left by an interrupted run", path, number)
                continue
            raise StoreError(f"{path}, line {number}: not valid JSON ({exc.msg}); fix or delete that line") from exc
        if not isinstance(obj, dict):
            raise StoreError(f"{path}, line {number}: expected a JSON object")
        yield obj


# What json.dumps(obj, ensure_ascii=False) writes, from one encoder instead of a new one per line.
_LINE = json.JSONEncoder(ensure_ascii=False).encode


def append_jsonl(path: Path, records: Iterable[Any]) -> int:
    """Append records as JSON lines and fsync, after dropping any torn tail so lines never merge."""
    lines = [_LINE(r if isinstance(r, dict) else to_dict(r)) + "\n" for r in records]
    if not lines:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    _repair_tail(path)
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(lines))
        f.flush()
        os.fsync(f.fileno())
    return len(lines)


def records(cls: type[R], path: Path) -> dict[str, R]:
    """The latest record per id in a JSONL file. Records hold no reference cycles, so the cyclic garbage
    collector is paused while a large file is read (it would otherwise rescan the growing heap again and
    again: half the time of reading a million judgments)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        out = from_dicts(cls, read_jsonl_list(path))
        return dict(zip(map(operator.attrgetter("id"), out), out))
    finally:
        if paused:
            gc.enable()


class RunStore:
    """Files of one run under `root` (results/<run>/)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def write_config(self, resolved: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.root / CONFIG, yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))

    def read_config(self) -> dict[str, Any]:
        path = self.root / CONFIG
        if not path.exists():
            raise StoreError(f"{self.root}: not a lima-eval run directory (no {CONFIG})")
        try:
            data = load_yaml(read_text(path), path)
        except InputError as exc:
            raise StoreError(str(exc)) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise StoreError(f"{path}{f', line {mark.line + 1}' if mark else ''}: not valid YAML") from None
        if not isinstance(data, dict):
            raise StoreError(f"{path}: expected a mapping")
        return data

    def generations(self) -> dict[str, Generation]:
        """Latest record per generation id (a retried failure replaces the error record)."""
        return records(Generation, self.root / GENERATIONS)

    def judgments(self, human: bool = False) -> dict[str, Judgment]:
        """Latest record per id; people's labels without those withdrawn (undone in the labelling app)."""
        if human:
            return {k: j for k, j in records(Judgment, self.root / HUMAN).items() if j.error_kind != WITHDRAWN}
        return records(Judgment, self.root / JUDGMENTS)

    def ratings(self, human: bool = False) -> dict[str, Rating]:
        if human:
            return {k: r for k, r in records(Rating, self.root / HUMAN_RATINGS).items() if r.error_kind != WITHDRAWN}
        return records(Rating, self.root / RATINGS)

    def append_ratings(self, records: Iterable[Rating], human: bool = False) -> int:
        return append_jsonl(self.root / (HUMAN_RATINGS if human else RATINGS), records)

    def imported(self) -> dict[str, Judgment]:
        return records(Judgment, self.root / IMPORTED)

    def append_imported(self, records: Iterable[Judgment]) -> int:
        return append_jsonl(self.root / IMPORTED, records)

    def imported_ratings(self) -> dict[str, Rating]:
        return records(Rating, self.root / IMPORTED_RATINGS)

    def append_imported_ratings(self, records: Iterable[Rating]) -> int:
        return append_jsonl(self.root / IMPORTED_RATINGS, records)

    def append_generations(self, records: Iterable[Generation]) -> int:
        return append_jsonl(self.root / GENERATIONS, records)

    def append_judgments(self, records: Iterable[Judgment], human: bool = False) -> int:
        return append_jsonl(self.root / (HUMAN if human else JUDGMENTS), records)
