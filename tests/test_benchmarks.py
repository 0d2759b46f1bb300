import json

import pytest

from lima_eval.benchmarks import available, load_prompt_file, load_prompts
from lima_eval.config import BenchmarkSpec
from lima_eval.errors import InputError, UnknownNameError


def test_demo_set_has_about_30_diverse_prompts():
    prompts = load_prompts(BenchmarkSpec(name="demo"))
    assert 25 <= len(prompts) <= 40
    assert len({p.id for p in prompts}) == len(prompts)
    assert {"advice", "writing", "coding", "math", "safety"} <= {p.category for p in prompts}


def test_registry_lists_shipped_sets_and_suggests():
    assert {"demo", "lima-test"} <= set(available())
    with pytest.raises(UnknownNameError, match="did you mean 'demo'"):
        load_prompts(BenchmarkSpec(name="dmeo"))


def test_lima_test_from_a_local_copy(shared_data):
    prompts = load_prompts(BenchmarkSpec(name="lima-test", path=str(shared_data / "lima/lima_test_300_prompts.jsonl")))
    assert len(prompts) == 300
    assert [p.id for p in prompts[:3]] == ["0", "1", "2"]
    assert prompts[0].text.startswith("I'm writing a NeurIPS paper")


def test_custom_csv_and_limit(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('\ufeffid,prompt,category\na,"Hello, world",x\nb,Second,y\nc,Third,z\n', encoding="utf-8")
    prompts = load_prompts(BenchmarkSpec(name="file", path=str(path), limit=2))
    assert [(p.id, p.text, p.category) for p in prompts] == [("a", "Hello, world", "x"), ("b", "Second", "y")]


@pytest.mark.parametrize("lines,message", [
    (['{"id": "a", "prompt": "x"}', "{not json"], "line 2: not valid JSON"),
    (['{"id": "a", "prompt": "x"}', '{"id": "a", "prompt": "y"}'], "line 2, field 'id': duplicate prompt id 'a'"),
    (['{"id": "a", "answer": "x"}'], "line 1: no prompt text"),
    (['{"id": "a", "prompt": "  "}'], "line 1, field 'prompt': empty prompt text"),
    (['[1, 2]'], "line 1: expected a JSON object"),
])
def test_bad_prompt_files_name_line_and_field(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_prompt_file(path)
    assert str(err.value) == f"{path}, {message}" or message in str(err.value)
    assert str(path) in str(err.value)


def test_first_user_turn_of_a_conversation_is_the_prompt(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"conversations": ["Q1", "A1", "Q2"]}) + "\n")
    assert [(p.id, p.text) for p in load_prompt_file(path)] == [("0", "Q1")]
