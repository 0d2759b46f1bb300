"""Reading users' files with errors that name the file, the line and the field: one reader per format, shared
by prompts, answers, labels, rules, foreign judgments and SFT data."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from lima_eval.errors import InputError

CSV_FIELD_LIMIT = 16 * 2**20  # characters in one CSV cell (a long answer fits; the csv module's own is 128 KiB)


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


def json_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, value) for each line of a JSONL file, or (item number, value) for a JSON list (.json).
    NaN is read (AlpacaEval's files hold it where a value is missing); ids are checked by check_id."""
    path = Path(path)
    text = read_text(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not valid JSON ({exc.msg})", line=exc.lineno) from None
        if not isinstance(data, list):
            raise InputError(path, "expected a JSON list")
        return [(i + 1, r) for i, r in enumerate(data)]
    rows = []
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(path, f"not valid JSON ({exc.msg})", line=n) from None
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
        raise InputError(path, f"not an id: {value!r}", line=line, field=field)
    if isinstance(value, float):
        if math.isinf(value):
            raise InputError(path, f"not an id: {value!r}", line=line, field=field)
        value = int(value)
    if not isinstance(value, (str, int)):
        raise InputError(path, f"not an id: {type(value).__name__}", line=line, field=field)
    text = str(value)
    if not text.strip() or any(ord(c) < 32 for c in text):
        raise InputError(path, f"not an id: {text!r} (empty, or a control character)", line=line, field=field)
    return text
