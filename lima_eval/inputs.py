"""Reading users' files with errors that name the file, the line and the field: one reader per format, shared
by prompts, answers, labels, rules, foreign judgments and SFT data."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import reprlib
from itertools import accumulate
from pathlib import Path
from typing import Any

import yaml

from lima_eval.errors import InputError

CSV_FIELD_LIMIT = 16 * 2**20  # characters in one CSV cell (a long answer fits; the csv module's own is 128 KiB)
# Hostile structure is refused before it is built: deeper nesting than any real file has (Python's own parsers
# recurse and end in RecursionError near 1,000), YAML aliases that would expand a small file into a huge tree
# (a "billion laughs"), and YAML files larger than a config or judge folder ever is (PyYAML reads ~1 MB/s).
MAX_DEPTH = 100
MAX_YAML_BYTES = 4 * 2**20
MIN_YAML_NODES = 100_000  # expanded nodes always allowed; beyond that, aliases may at most double a file
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def read_text(path: Path | str) -> str:
    """A UTF-8 text file (a BOM is allowed); a missing file, a folder or a non-UTF-8 byte is an InputError naming
    the line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(path, f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", line=line) from None


def shown(value: Any, width: int = 60) -> str:
    """A value for an error message: repr'd within bounds (a huge or deeply nested value never is in whole)."""
    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlong = 3, width, width, width
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 6
    return r.repr(value)


def json_depth(text: str) -> int:
    """How deep the brackets of a JSON text nest (strings skipped), or an upper bound of it not over MAX_DEPTH:
    counting is all it takes when there are few brackets."""
    opening = text.count("[") + text.count("{")
    if opening <= MAX_DEPTH:
        return opening
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def load_json(text: str, path: Path | str, line: int | None = None) -> Any:
    """json.loads with the nesting capped at MAX_DEPTH; an InputError naming the file and line otherwise. NaN is
    read (AlpacaEval's files hold it); the caller checks the values."""
    if json_depth(text) > MAX_DEPTH:
        raise InputError(path, f"nested deeper than {MAX_DEPTH} levels; refused", line=line)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg})", line=line or exc.lineno) from None
    except RecursionError:  # a guard the depth count cannot miss, kept for safety
        raise InputError(path, f"nested deeper than {MAX_DEPTH} levels; refused", line=line) from None


def check_yaml(text: str, path: Path | str) -> None:
    """Refuse YAML that is too large, nests deeper than MAX_DEPTH, or whose aliases would expand it far beyond
    its size, walking the parser's events (iterative, nothing built): an InputError naming the file and line."""
    if len(text) > MAX_YAML_BYTES:
        raise InputError(path, f"{len(text) / 2**20:.1f} MB of YAML; a config or judge file over "
                         f"{MAX_YAML_BYTES // 2**20} MB is refused")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    stack: list[list[Any]] = [[0, None]]  # per open collection: [expanded nodes so far, its anchor]
    sizes: dict[str, int] = {}
    events = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            events += 1
            _count(event, stack, sizes, events, path)
    except yaml.YAMLError as exc:  # libyaml stops a flow collection's scan at its own depth limit
        if "nesting depth" not in str(exc):
            raise
        mark = getattr(exc, "problem_mark", None)
        raise InputError(path, f"nested deeper than {MAX_DEPTH} levels; refused",
                         line=mark.line + 1 if mark else None) from None
    total = sum(s for s, _ in stack)
    if total > max(MIN_YAML_NODES, 2 * events):
        raise InputError(path, f"YAML aliases that would expand it to {total:,} values; refused")


def _count(event: Any, stack: list[list[Any]], sizes: dict[str, int], events: int, path: Path | str) -> None:
    """One parser event of check_yaml: open and close collections, count expanded values."""
    if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
        stack.append([0, event.anchor])
        if len(stack) - 1 > MAX_DEPTH:
            raise InputError(path, f"nested deeper than {MAX_DEPTH} levels; refused",
                             line=event.start_mark.line + 1)
    elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
        size, anchor = stack.pop()
        if anchor:
            sizes[anchor] = size + 1
        stack[-1][0] += size + 1
    elif isinstance(event, yaml.ScalarEvent):
        if event.anchor:
            sizes[event.anchor] = 1
        stack[-1][0] += 1
    elif isinstance(event, yaml.AliasEvent):
        stack[-1][0] += sizes.get(event.anchor or "", 1)
        if stack[-1][0] > max(MIN_YAML_NODES, 2 * events):
            raise InputError(path, "YAML aliases that would expand it beyond "
                             f"{max(MIN_YAML_NODES, 2 * events):,} values; refused",
                             line=event.start_mark.line + 1)


def load_yaml(text: str, path: Path | str) -> Any:
    """yaml.safe_load after check_yaml: syntax errors stay yaml.YAMLError (callers name them), hostile structure
    is an InputError."""
    check_yaml(text, path)
    return yaml.safe_load(text)


def json_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, value) for each line of a JSONL file, or (item number, value) for a JSON list (.json).
    NaN is read (AlpacaEval's files hold it where a value is missing); ids are checked by check_id."""
    path = Path(path)
    text = read_text(path)
    if path.suffix.lower() == ".json":
        data = load_json(text, path)
        if not isinstance(data, list):
            raise InputError(path, "expected a JSON list")
        return [(i + 1, r) for i, r in enumerate(data)]
    rows = []
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            rows.append((n, load_json(line, path, line=n)))
    return rows


def csv_rows(path: Path, text: str | None = None) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line, row)]) of a CSV: strict quoting (an unclosed quote is an error naming where it starts,
    never a cell that swallows the rows after it), no NUL bytes, cells up to CSV_FIELD_LIMIT characters."""
    path = Path(path)
    text = read_text(path) if text is None else text
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] = []
    rows: list[tuple[int, dict[str, str]]] = []
    start = 1
    try:
        for cells in reader:
            if not header:
                header = [h.strip() for h in cells]
                start = reader.line_num + 1
                continue
            if not any(c.strip() for c in cells):
                start = reader.line_num + 1
                continue
            for name, cell in zip(header, cells):
                if "\x00" in cell:
                    raise InputError(path, "a NUL byte in the cell", line=start, field=name)
            if len(cells) > len(header):
                raise InputError(path, f"{len(cells)} cells but the header has {len(header)}", line=start)
            rows.append((start, dict(zip(header, cells + [""] * (len(header) - len(cells))))))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(path, f"not valid CSV ({exc}; an unclosed quote starts here?)", line=start) from None
    return header, rows


def check_id(value: Any, path: Path, line: int, field: str) -> str:
    """An id as text: a non-empty string or an integer; anything else (NaN, a float, a list, a NUL) is an
    InputError naming the row and field."""
    if isinstance(value, bool) or value is None or (isinstance(value, float) and not value.is_integer()):
        raise InputError(path, f"not an id: {shown(value)}", line=line, field=field)
    if isinstance(value, float):
        if math.isinf(value):
            raise InputError(path, f"not an id: {shown(value)}", line=line, field=field)
        value = int(value)
    if not isinstance(value, (str, int)):
        raise InputError(path, f"not an id: {type(value).__name__}", line=line, field=field)
    text = str(value)
    if not text.strip() or any(ord(c) < 32 for c in text):
        raise InputError(path, f"not an id: {shown(text)} (empty, or a control character)", line=line, field=field)
    return text
