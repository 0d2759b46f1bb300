"""Property tests over every reader of users' files: random bytes, random JSON and random CSV never give a
traceback (only a LimaEvalError naming the file) and never a partial write to the run folder. Hostile structure
too (issue 25): JSON nested past the limit anywhere in a file, and YAML whose aliases would expand a small file
into a huge tree or that nests past the limit, are refused naming the file, in bounded memory, never a
RecursionError or a MemoryError."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lima_eval.errors import LimaEvalError
from lima_eval.inputs import MAX_DEPTH

SETTINGS = settings(max_examples=int(__import__("os").environ.get("LIMA_EVAL_PROPERTY_EXAMPLES", "60")),
                    deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["id", "prompt", "instruction", "prompt_id", "answer", "output", "generator", "generator_1", "generator_2",
         "output_1", "output_2", "annotator", "preference", "question_id", "turn", "model_1", "model_2", "g1_winner",
         "g2_winner", "idx", "annotator1", "cmp_key", "model", "turns", "text", "conversations", "messages"]),
        inner, max_size=6),
    max_leaves=12)
jsonl = st.lists(json_values, max_size=5).map(lambda rows: "\n".join(json.dumps(r) for r in rows) + "\n")
json_list = st.lists(json_values, max_size=5).map(json.dumps)
columns = st.sampled_from(["prompt_id", "model_a", "model_b", "label", "annotator", "comment", "model", "id", "prompt"])
csv_text = st.tuples(st.lists(columns, min_size=1, max_size=6, unique=True),
                     st.lists(st.lists(st.text(max_size=12), max_size=7), max_size=5),
                     st.sampled_from([csv.excel, csv.excel_tab, csv.unix_dialect])).map(
    lambda t: _csv(*t))
raw = st.binary(max_size=200)


def _csv(header, rows, dialect):
    out = io.StringIO()
    w = csv.writer(out, dialect=dialect)
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def _bytes(x):
    return x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    from lima_eval.cli import main

    root = tmp_path_factory.mktemp("prop")
    (root / "prompts.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Q{i}?"}) + "\n"
                                                for i in range(3)))
    cfg = {"name": "r", "output_dir": str(root / "results"),
           "benchmark": {"name": "file", "path": str(root / "prompts.jsonl")},
           "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                      {"name": "base", "backend": "scripted", "model": "fixed:ok"},
                      {"name": "ext", "backend": "imported", "model": "imported:ext"}],
           "baselines": ["base"], "judge": {"backend": "scripted", "model": "fixed:Verdict: A"}}
    (root / "c.yaml").write_text(yaml.safe_dump(cfg))
    try:
        main(["run", str(root / "c.yaml"), "--no-progress"])
    except SystemExit as exc:
        assert not exc.code
    return root / "results" / "r"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _attack(finished: Path, tmp: Path, name: str, content, call) -> None:
    """Write content to tmp/name, call(run folder, file) on a copy of the finished run: either it works, or it
    raises a LimaEvalError and the run folder is byte-identical."""
    run = tmp / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(finished, run)
    path = tmp / name
    path.write_bytes(_bytes(content))
    before = _files(run)
    try:
        call(run, path)
    except LimaEvalError as exc:
        assert str(path) in str(exc) or path.name in str(exc), str(exc)
        assert _files(run) == before


@SETTINGS
@given(content=jsonl | raw | json_list)
def test_prompt_files(tmp_path_factory, content):
    from lima_eval.benchmarks import load_prompt_file

    tmp = tmp_path_factory.mktemp("p")
    for suffix in (".jsonl", ".json", ".csv"):
        path = tmp / f"prompts{suffix}"
        path.write_bytes(_bytes(content))
        try:
            prompts = load_prompt_file(path)
        except LimaEvalError as exc:
            assert path.name in str(exc)
        else:
            assert len({p.id for p in prompts}) == len(prompts)


@SETTINGS
@given(content=csv_text | raw)
def test_human_labels(finished, tmp_path_factory, content):
    from lima_eval.judging.human import import_human

    _attack(finished, tmp_path_factory.mktemp("h"), "labels.csv", content, lambda run, path: import_human(run, path))


@SETTINGS
@given(content=json_list | jsonl | raw, fmt=st.sampled_from(["alpaca-eval", "mt-bench-pair", "pandalm"]))
def test_foreign_judgments(finished, tmp_path_factory, content, fmt):
    from lima_eval.judging.foreign import import_judgments

    name = "foreign.jsonl" if fmt == "mt-bench-pair" else "foreign.json"
    _attack(finished, tmp_path_factory.mktemp("f"), name, content, lambda run, path: import_judgments(run, path, fmt))


@SETTINGS
@given(content=jsonl | json_list | raw)
def test_answers(finished, tmp_path_factory, content):
    from lima_eval.answers import import_answers

    _attack(finished, tmp_path_factory.mktemp("a"), "answers.jsonl", content,
            lambda run, path: import_answers(run, path, "ext"))


@SETTINGS
@given(content=st.text(max_size=120) | raw)
def test_rules_and_configs(finished, tmp_path_factory, content):
    from lima_eval.check import read_rules
    from lima_eval.config import load_config

    tmp = tmp_path_factory.mktemp("y")
    path = tmp / "file.yaml"
    path.write_bytes(_bytes(content))
    for read in (read_rules, load_config):
        try:
            read(path)
        except LimaEvalError as exc:
            assert "file.yaml" in str(exc)


@SETTINGS
@given(judge_yaml=st.text(max_size=80) | raw, template=st.text(max_size=80) | raw)
def test_judge_folders(tmp_path_factory, judge_yaml, template):
    from lima_eval.judging.definitions import read_folder

    folder = tmp_path_factory.mktemp("j")
    (folder / "judge.yaml").write_bytes(_bytes(judge_yaml))
    (folder / "prompt.txt").write_bytes(_bytes(template))
    try:
        read_folder(folder, "j")
    except LimaEvalError as exc:
        assert "judge.yaml" in str(exc) or "prompt.txt" in str(exc)


# --- hostile structure: depth and aliases -------------------------------------------------------------
MEMORY = 200 * 2**20  # the budget for refusing any hostile file


def nest(depth: int, kinds: list[str], core: str = "1") -> str:
    """A JSON value `depth` deep, each level a list or an object (kinds cycles through '[' and '{')."""
    opening = "".join("[" if kinds[i % len(kinds)] == "[" else '{"k": ' for i in range(depth))
    closing = "".join("]" if kinds[i % len(kinds)] == "[" else "}" for i in reversed(range(depth)))
    return opening + core + closing


deep_values = st.builds(nest, st.integers(MAX_DEPTH + 1, 5_000), st.lists(st.sampled_from(["[", "{"]), min_size=1,
                                                                      max_size=3))
keys = st.sampled_from(["id", "prompt", "instruction", "prompt_id", "answer", "output", "question_id", "turns",
                        "messages", "conversations", "preference", "annotator1", "cmp_key", "extra"])
# A deep value as a whole file, as a row of a JSON list, as a field of a row, among good rows.
deep_json = st.one_of(
    deep_values,
    st.tuples(deep_values, keys).map(lambda t: json.dumps([{"id": "p1", "prompt": "x"}]).replace(
        "}]", f', "{t[1]}": {t[0]}}}]')),
    st.tuples(deep_values, keys, st.integers(0, 3)).map(lambda t: "".join(
        json.dumps({"id": f"p{i}", "prompt": "x", "prompt_id": f"p{i}", "answer": "y"}) + "\n" for i in range(t[2]))
        + '{"id": "q", "' + t[1] + '": ' + t[0] + "}\n"),
)


def bomb(levels: int, fan: int) -> str:
    parts = ["&l0 [" + ",".join(["lol"] * fan) + "]"]
    parts += [f"&l{i} [" + ",".join([f"*l{i - 1}"] * fan) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


def block(depth: int) -> str:
    return "\n" + "".join("  " * (i + 1) + "- \n" for i in range(depth))


hostile_yaml_values = st.one_of(
    st.builds(bomb, st.integers(6, 12), st.integers(9, 16)),  # at least 9**6: half a million values
    st.builds(lambda v: v.replace('"k": ', '"k": '), deep_values),  # flow style is YAML too
    st.builds(block, st.integers(MAX_DEPTH + 1, 400)),
)
yaml_keys = st.sampled_from(["name", "seed", "models", "baselines", "judge", "rules", "labels", "prices", "level",
                             "kind", "template", "x"])
hostile_yaml = st.tuples(yaml_keys, hostile_yaml_values).map(lambda t: f"{t[0]}: {t[1]}\n")


def refused(path: Path, call) -> None:
    """call() is refused with a LimaEvalError naming the file, in bounded memory."""
    tracemalloc.start()
    try:
        with pytest.raises(LimaEvalError) as info:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.name in str(info.value), str(info.value)[:300]
    assert len(str(info.value)) < 1000
    assert peak < MEMORY, f"{peak / 2**20:.0f} MB"


@SETTINGS
@given(content=deep_json)
def test_deep_json_in_prompt_files(tmp_path_factory, content):
    from lima_eval.benchmarks import load_prompt_file

    tmp = tmp_path_factory.mktemp("p")
    for suffix in (".jsonl", ".json"):
        path = tmp / f"prompts{suffix}"
        path.write_text(content)
        try:
            load_prompt_file(path)
        except LimaEvalError as exc:
            assert path.name in str(exc)
        else:  # only a JSON list whose rows are read whole can hold nothing deep: it never does here
            pytest.fail(f"{path.name} read a value nested over {MAX_DEPTH} deep")


@SETTINGS
@given(content=deep_json)
def test_deep_json_in_answers(finished, tmp_path_factory, content):
    from lima_eval.answers import import_answers

    _attack(finished, tmp_path_factory.mktemp("a"), "answers.jsonl", content,
            lambda run, path: import_answers(run, path, "ext"))


@SETTINGS
@given(content=deep_json, fmt=st.sampled_from(["alpaca-eval", "mt-bench-pair", "pandalm", "mt-bench-single"]))
def test_deep_json_in_foreign_judgments(finished, tmp_path_factory, content, fmt):
    from lima_eval.judging.foreign import import_judgments

    name = "foreign.json" if fmt in ("alpaca-eval", "pandalm") else "foreign.jsonl"
    _attack(finished, tmp_path_factory.mktemp("f"), name, content, lambda run, path: import_judgments(run, path, fmt))


@SETTINGS
@given(content=deep_json, suffix=st.sampled_from([".json", ".jsonl"]))
def test_deep_json_in_gold_sft_and_training_files(tmp_path_factory, content, suffix):
    from lima_eval.contamination import training_texts
    from lima_eval.judging.gold import load_gold
    from lima_eval.sft.data import load_conversations

    path = tmp_path_factory.mktemp("g") / f"data{suffix}"
    path.write_text(content)
    for read in (lambda: load_gold(str(path)), lambda: load_conversations(str(path)),
                 lambda: training_texts(str(path))):
        refused(path, read)


@SETTINGS
@given(content=hostile_yaml)
def test_hostile_yaml_in_configs_rules_and_judge_files(finished, tmp_path_factory, content):
    from lima_eval.check import read_rules
    from lima_eval.config import load_config
    from lima_eval.judge_card import judge_section
    from lima_eval.judging.definitions import read_folder
    from lima_eval.store import RunStore

    tmp = tmp_path_factory.mktemp("y")
    path = tmp / "file.yaml"
    path.write_text(content)
    for read in (lambda: read_rules(path), lambda: load_config(path), lambda: judge_section(str(path))):
        refused(path, read)
    folder = tmp / "judge"
    folder.mkdir()
    (folder / "judge.yaml").write_text(content)
    (folder / "prompt.txt").write_text("{prompt} {answer_a} {answer_b}")
    refused(folder / "judge.yaml", lambda: read_folder(folder, "judge"))
    run = tmp / "run"
    run.mkdir()
    (run / "config.yaml").write_text(content)
    refused(run / "config.yaml", lambda: RunStore(run).read_config())


@SETTINGS
@given(value=hostile_yaml_values, key=st.sampled_from(["name", "seed", "models.mine.model", "judge.model",
                                                        "judge.require.max_flip_rate", "benchmark"]))
def test_hostile_yaml_in_set_overrides(finished, value, key):
    from lima_eval.config import load_config

    with pytest.raises(LimaEvalError) as info:
        load_config(finished / "config.yaml", [f"{key}={value}"])
    assert f"--set {key}" in str(info.value) and len(str(info.value)) < 1000


def test_the_limits_leave_real_files_alone(tmp_path):
    """Just under the limits: 100 levels of JSON and YAML, and aliases that repeat a section (a real use) load."""
    from lima_eval.inputs import load_json, load_yaml

    assert load_json(nest(MAX_DEPTH, ["["]), "f.json") is not None
    assert load_yaml("a: " + nest(MAX_DEPTH - 1, ["["]) + "\n", "f.yaml")["a"] is not None
    shared = "base: &s {temperature: 0, top_p: 1}\n" + "".join(f"m{i}: *s\n" for i in range(500))
    assert load_yaml(shared, "f.yaml")["m499"] == {"temperature": 0, "top_p": 1}
    big = "rows:\n" + "".join(f"  - {{id: p{i}, prompt: q}}\n" for i in range(60_000))  # 180k values, no alias
    assert len(load_yaml(big, "f.yaml")["rows"]) == 60_000
    with pytest.raises(LimaEvalError, match="nested deeper than 100"):
        load_json(nest(MAX_DEPTH + 1, ["{"]), "f.json")
    with pytest.raises(LimaEvalError, match="nested deeper than 100"):
        load_yaml("a: " + nest(MAX_DEPTH + 1, ["["]) + "\n", "f.yaml")
