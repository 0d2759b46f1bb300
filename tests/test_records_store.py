import json

import pytest

from lima_eval.errors import StoreError
from lima_eval.records import Generation, Judgment, Prompt, Rating, content_id
from lima_eval.store import GENERATIONS, RunStore, read_jsonl


def gen(i: int, error=None) -> Generation:
    return Generation(id=f"g{i}", prompt_id=f"p{i}", model="m", text=f"answer {i}", error=error)


def test_content_ids_are_stable_and_sensitive():
    p = Prompt(id="1", text="hi")
    spec = {"backend": "hf", "model": "x", "sampling": {"temperature": 0.7}}
    assert Generation.make_id(p, "m", spec) == Generation.make_id(Prompt(id="1", text="hi"), "m", dict(spec))
    assert Generation.make_id(p, "m", spec) != Generation.make_id(p, "m2", spec)
    assert Generation.make_id(p, "m", spec) != Generation.make_id(Prompt(id="1", text="hi!"), "m", spec)
    changed = spec | {"sampling": {"temperature": 0.0}}
    assert Generation.make_id(p, "m", spec) != Generation.make_id(p, "m", changed)
    assert content_id({"a": 1, "b": 2}) == content_id({"b": 2, "a": 1})


def test_torn_last_line_is_dropped_and_never_merged(tmp_path):
    store = RunStore(tmp_path)
    store.append_generations([gen(1), gen(2)])
    path = tmp_path / GENERATIONS
    with path.open("a") as f:  # a crash in the middle of a write
        f.write('{"id": "g3", "prompt_id": "p3", "mod')
    assert set(store.generations()) == {"g1", "g2"}
    store.append_generations([gen(4)])
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)
    assert set(store.generations()) == {"g1", "g2", "g4"}


def test_corrupt_line_in_the_middle_names_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(StoreError, match=r"x.jsonl, line 2"):
        list(read_jsonl(path))


def test_latest_record_wins_so_a_retried_failure_replaces_the_error(tmp_path):
    store = RunStore(tmp_path)
    store.append_generations([gen(1, error="HTTP 500")])
    store.append_generations([gen(1)])
    assert store.generations()["g1"].error is None


def _full(cls, i: int):
    """A record with every field set to a value other than its default (so a dropped field is noticed)."""
    import dataclasses
    import typing

    values = {}
    for f in dataclasses.fields(cls):
        tp = str(typing.get_type_hints(cls)[f.name])
        if f.name in ("verdict",):
            values[f.name] = "b"
        elif f.name == "shown_first":
            values[f.name] = "a"
        elif "bool" in tp:
            values[f.name] = True
        elif tp.startswith("<class 'int'>") or tp == "int":
            values[f.name] = 7 + i
        elif "float" in tp:
            values[f.name] = 1.5 + i
        elif "dict" in tp:
            values[f.name] = {"a": 0.25, "b": 0.5, "tie": 0.25} if f.name == "probs" else {f"{f.name}_k": i + 1}
        elif "tuple" in tp:
            values[f.name] = (f"{f.name}-x", f"{f.name}-y")
        else:
            values[f.name] = f"{f.name}-{i}"
    record = cls(**values)
    for f in dataclasses.fields(cls):  # nothing left at its default
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else object())
        assert getattr(record, f.name) != default, f.name
    return record


@pytest.mark.parametrize("cls,append,read", [
    (Generation, "append_generations", "generations"),
    (Judgment, "append_judgments", "judgments"),
    (Rating, "append_ratings", "ratings"),
    (Judgment, "append_imported", "imported"),
])
def test_round_trip_keeps_every_field(tmp_path, cls, append, read):
    """Every record type written through the run store and read back is equal, field by field."""
    import dataclasses

    records = [_full(cls, i) for i in range(3)]
    getattr(RunStore(tmp_path), append)(records)
    back = getattr(RunStore(tmp_path), read)()
    assert list(back) == [r.id for r in records]
    for r in records:
        for f in dataclasses.fields(cls):
            assert getattr(back[r.id], f.name) == getattr(r, f.name), f.name
        assert back[r.id] == r

@pytest.mark.parametrize("cls", [Generation, Judgment, Rating])
def test_records_read_with_fields_left_out_are_those_the_constructor_makes(tmp_path, cls):
    """from_dict fills records directly (the hot path of a large report): what it gives must be what the class's
    own __init__ gives, defaults included, each record with its own mutable defaults."""
    import dataclasses

    from lima_eval.records import from_dict

    required = {f.name: f"{f.name}-v" for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    if "verdict" in required:
        required["verdict"] = "a"
    one, two = from_dict(cls, required | {"from_a_newer_version": 1}), from_dict(cls, dict(required))
    assert one == cls(**required) and repr(one) == repr(cls(**required))
    one.usage["prompt_tokens"] = 5  # a default dict is not shared between records
    assert two.usage == {}
    with pytest.raises(TypeError):
        from_dict(cls, {k: v for k, v in required.items() if k != "id"})


def test_a_whole_file_and_the_line_by_line_reading_agree(tmp_path):
    """The one-parse reading of a whole file and the line-by-line one (used when anything is off) give the same."""
    from lima_eval.store import read_jsonl

    path = tmp_path / "x.jsonl"
    rows = [{"id": str(i), "text": "a\u00e9\u2028b" * i, "n": i} for i in range(50)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert list(read_jsonl(path)) == rows
    path.write_text(path.read_text(encoding="utf-8") + "[1, 2]\n", encoding="utf-8")  # a line that is no object
    with pytest.raises(StoreError, match="line 51: expected a JSON object"):
        list(read_jsonl(path))
