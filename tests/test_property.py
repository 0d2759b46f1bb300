"""Property tests over every reader of users' files: random bytes, random JSON and random CSV never give a
traceback (only a LimaEvalError naming the file) and never a partial write to the run folder."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lima_eval.errors import LimaEvalError

SETTINGS = settings(max_examples=int(__import__("os").environ.get("LIMA_EVAL_PROPERTY_EXAMPLES", "60")), deadline=None, suppress_health_check=list(HealthCheck))

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
    (root / "prompts.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Q{i}?"}) + "\n" for i in range(3)))
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
