"""Judge folders: golden prompt snapshots, where judges are found (folders, ./judges, plugins), bad folders."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from lima_eval.errors import LimaEvalError
from lima_eval.judging.definitions import available, load_definition, read_folder

GOLDEN = Path(__file__).parent / "golden"
EXAMPLE = {
    "prompt": "How do I boil an egg?", "answer": "Put it in boiling water for 9 minutes.",
    "answer_a": "Boil it for 9 minutes.", "answer_b": "Eggs are laid by hens.",
    "question_1": "How do I boil an egg?", "question_2": "And a soft one?",
    "answer_a_1": "Boil it for 9 minutes.", "answer_a_2": "6 minutes.",
    "answer_b_1": "Eggs are laid by hens.", "answer_b_2": "Softly.",
    "answer_1": "Boil it for 9 minutes.", "answer_2": "6 minutes.",
    "reference": "About 9 minutes in boiling water.", "reference_1": "About 9 minutes in boiling water.",
    "reference_2": "About 6 minutes for a soft yolk.",
    "rubric": "1: no usable advice\n3: a time without the method\n5: the method and the time",
    "checklist": "1. gives a time\n2. says to use boiling water",
}
SHIPPED = ["lima-absolute", "lima-likert", "lima-pairwise", "mt-bench-pair", "lima-safety", "mt-bench-single",
           "mt-bench-single-multiturn", "mt-bench-single-ref", "mt-bench-single-ref-multiturn", "mt-bench-pair-ref",
           "checklist", "rubric"]


def rendered(name: str) -> str:
    d = load_definition(name)
    values = {k: EXAMPLE[k] for k in d.judge_kind.placeholders | d.judge_kind.optional}
    msgs = d.render(prefill=True, **values)
    return "".join(f"### {m['role']}\n{m['content']}\n" for m in msgs)


@pytest.mark.parametrize("name", SHIPPED)
def test_rendered_prompt_matches_the_snapshot(name):
    """Set LIMA_EVAL_UPDATE_GOLDEN=1 to rewrite the snapshots after a deliberate template change."""
    text = rendered(name)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("LIMA_EVAL_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
    # Every placeholder was filled and every example value the judge needs is in the prompt.
    assert not re.search(r"\{[a-z_0-9]+\}", text)
    for value in {k: v for k, v in EXAMPLE.items() if "{" + k + "}" in load_definition(name).template}.values():
        assert value in text


def test_every_shipped_judge_is_listed():
    assert set(SHIPPED) <= set(available())
    out = run_cli("judges", "list")
    assert out.returncode == 0
    kinds = dict(line.split("\t")[:2] for line in out.stdout.splitlines())
    assert kinds["lima-absolute"] == "rating [fail/pass/excellent]"
    assert kinds["mt-bench-pair"] == "pairwise-multiturn" and kinds["lima-pairwise"] == "pairwise"


def write_judge(folder: Path, template: str, kind: str = "rating", labels=("bad", "good")) -> Path:
    folder.mkdir(parents=True)
    labels_yaml = "[" + ", ".join(labels) + "]"
    (folder / "judge.yaml").write_text(f"kind: {kind}\nparser: lima-absolute\nlabels: {labels_yaml}\n"
                                       "description: a judge of our own\n")
    (folder / "prompt.txt").write_text(template)
    return folder


def test_a_user_folder_on_the_search_path_is_a_judge(tmp_path):
    write_judge(tmp_path / "judges" / "my-judge", "Rate {answer} to {prompt}.")
    out = run_cli("judges", "list", env={"LIMA_EVAL_JUDGES_PATH": str(tmp_path / "judges")})
    line = next(x for x in out.stdout.splitlines() if x.startswith("my-judge\t"))
    assert "a judge of our own" in line and str(tmp_path / "judges") in line


def test_a_plugin_entry_point_adds_a_judge(tmp_path):
    """A real installed distribution (a dist-info folder on sys.path) whose entry point names a judge folder."""
    site = tmp_path / "site"
    pkg = site / "myjudges"
    write_judge(pkg / "strict", "Is {answer} a good reply to {prompt}?")
    (pkg / "__init__.py").write_text("from pathlib import Path\nFOLDER = Path(__file__).parent / 'strict'\n")
    info = site / "myjudges-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myjudges\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[lima_eval.judges]\nstrict-plugin = myjudges:FOLDER\n")
    env = dict(os.environ, PYTHONPATH=str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "lima_eval.cli", "judges", "list"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, check=False)
    line = next(x for x in out.stdout.splitlines() if x.startswith("strict-plugin\t"))
    assert "plugin myjudges:FOLDER" in line and "rating [bad/good]" in line


@pytest.mark.parametrize("template,kind,problem", [
    ("Rate {answer}.", "rating", "must use exactly {answer}, {prompt}"),
    ("Compare {answer_a} and {answer_b} for {prompt} and {answer}.", "pairwise", "must use exactly"),
])
def test_bad_judge_folders_are_named(tmp_path, template, kind, problem):
    folder = write_judge(tmp_path / "bad", template, kind=kind)
    with pytest.raises(LimaEvalError, match=re.escape(problem)) as err:
        read_folder(folder, "bad")
    assert "prompt.txt" in str(err.value)


def test_a_rating_judge_needs_a_scale(tmp_path):
    folder = write_judge(tmp_path / "noscale", "Rate {answer} to {prompt}.", labels=())
    with pytest.raises(LimaEvalError, match="key 'labels'"):
        read_folder(folder, "noscale")


def test_unknown_judge_suggests_the_closest():
    with pytest.raises(LimaEvalError, match="did you mean 'lima-absolute'"):
        load_definition("lima-absolut")


def test_prices_match_the_longest_prefix():
    d = load_definition("lima-pairwise")
    assert d.price("gpt-4o-2024-08-06") == {"input": 2.5, "output": 10.0}
    assert d.price("gpt-4o-mini-2024-07-18") == {"input": 0.15, "output": 0.6}
    assert d.price("my-local-model") is None
    assert (REPO / "judges" / "lima-pairwise" / "judge.yaml").exists()


@pytest.mark.parametrize("extra,problem", [
    ("prices:\n  gpt-4o: {input: cheap, output: 10}\n", "key 'prices.gpt-4o': give input and output as numbers"),
    ("prices: [gpt-4o]\n", "key 'prices': expected a mapping"),
    ("options: A\n", "key 'options': expected a mapping"),
])
def test_bad_judge_yaml_values_are_named(tmp_path, extra, problem):
    folder = write_judge(tmp_path / "bad", "Rate {answer} to {prompt}.")
    (folder / "judge.yaml").write_text((folder / "judge.yaml").read_text() + extra)
    with pytest.raises(LimaEvalError, match=re.escape(problem)) as err:
        read_folder(folder, "bad")
    assert str(folder / "judge.yaml") in str(err.value)


def test_every_judge_prices_from_the_one_shared_table_and_a_judge_may_override(tmp_path):
    from lima_eval.judging.definitions import shared_prices

    shared = shared_prices()
    assert shared["gpt-4o"] == {"input": 2.5, "output": 10.0}
    for name in ("lima-pairwise", "lima-absolute", "lima-likert", "mt-bench-pair"):
        assert load_definition(name).prices == shared
        assert "\nprices:" not in (REPO / "judges" / name / "judge.yaml").read_text()  # not copied per judge
    folder = write_judge(tmp_path / "own", "Rate {answer} to {prompt}.")
    with (folder / "judge.yaml").open("a") as f:
        f.write("prices:\n  gpt-4o: {input: 1, output: 2}\n  my-model: {input: 0.5, output: 0.5}\n")
    own = load_definition(str(folder))
    assert own.price("gpt-4o-2024") == {"input": 1.0, "output": 2.0}  # overridden
    assert own.price("gpt-4.1-mini") == shared["gpt-4.1-mini"]  # inherited
    assert own.price("my-model") == {"input": 0.5, "output": 0.5}  # added
