import json

import pytest

from lima_eval.errors import StoreError
from lima_eval.records import Generation, Judgment, Prompt, content_id
from lima_eval.store import GENERATIONS, RunStore, append_jsonl, read_jsonl


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


def test_round_trip_keeps_every_field(tmp_path):
    j = Judgment(id="j", prompt_id="p", model_a="a", model_b="b", judge="lima", verdict="tie", shown_first="b",
                 raw="Verdict: neither", usage={"prompt_tokens": 3})
    append_jsonl(tmp_path / "j.jsonl", [j])
    assert RunStore(tmp_path).judgments() == {} and next(read_jsonl(tmp_path / "j.jsonl"))["shown_first"] == "b"
