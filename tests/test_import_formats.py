"""Kinds of imported files as classes in one registry: every built-in is registered as `<family>.<name>` and
recognises its own files, and an answers format from a plugin installed as a real distribution (a package plus
its .dist-info with an entry point on the path) is offered by --format, detected by `auto` and used end to end."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO, assert_one_line_error, write_config

from lima_eval.answers import AnswersFormat
from lima_eval.config import load_config, to_plain
from lima_eval.judging.foreign import JudgmentsFormat
from lima_eval.judging.formats import FAMILIES, ImportFormat, detect, formats, get, names
from lima_eval.judging.gold import GoldFormat
from lima_eval.judging.human import HumanFormat
from lima_eval.registry import IMPORT_FORMATS
from lima_eval.store import RunStore

BUILT_IN = {
    "answers": ["alpaca-eval", "mt-bench", "jsonl"],
    "judgments": ["alpaca-eval", "mt-bench-pair", "pandalm", "mt-bench-single"],
    "gold": ["run", "mt-bench-human", "pandalm"],
    "human": ["ratings", "pairwise"],
}
BASES = {"answers": AnswersFormat, "judgments": JudgmentsFormat, "gold": GoldFormat, "human": HumanFormat}


def test_every_built_in_format_is_registered_under_its_family_and_name():
    assert set(FAMILIES) == set(BUILT_IN)
    for family, expected in BUILT_IN.items():
        assert [n for n in names(family) if n in expected] == expected  # in rank order: --help's and detection's
        for fmt in formats(family, BASES[family]):
            assert IMPORT_FORMATS.target(f"{family}.{fmt.name}")
            assert isinstance(fmt, BASES[family]) and fmt.family == family
    with pytest.raises(Exception, match="unknown answers format 'mt-bnch' \\(did you mean 'mt-bench'\\?\\)"):
        get("answers", "mt-bnch", ImportFormat)


@pytest.mark.parametrize("family,suffix,first,expected", [
    ("answers", ".json", {"anything": 1}, "alpaca-eval"),  # a JSON list is AlpacaEval's model_outputs.json
    ("answers", ".jsonl", {"instruction": "q", "output": "a"}, "alpaca-eval"),
    ("answers", ".jsonl", {"question_id": 81, "choices": [{"turns": ["a"]}]}, "mt-bench"),
    ("answers", ".jsonl", {"instruction": "q", "output": "a", "choices": []}, "mt-bench"),
    ("answers", ".jsonl", {"instruction": "q", "output": "a", "answer": "b"}, "jsonl"),
    ("answers", ".jsonl", {"prompt_id": "p1", "answer": "a"}, "jsonl"),
    ("answers", ".jsonl", None, "jsonl"),  # not JSON: the catch-all reads it and says what is wrong
    ("human", ".csv", ["prompt_id", "model", "label", "annotator"], "ratings"),
    ("human", ".csv", ["prompt_id", "model_a", "model_b", "model", "label", "annotator"], "pairwise"),
    ("human", ".csv", ["prompt_id", "model_a", "model_b", "label", "annotator"], "pairwise"),
    ("gold", ".jsonl", {"question_id": 81, "conversation_a": []}, "mt-bench-human"),
    ("gold", ".json", {"idx": 0, "cmp_key": "a_b"}, "pandalm"),
    ("gold", "/", None, "run"),
])
def test_each_format_recognises_its_own_files(tmp_path, family, suffix, first, expected):
    path = tmp_path if suffix == "/" else tmp_path / f"file{suffix}"
    found = detect(family, path, first, BASES[family])
    assert found is not None and found.name == expected


TSV_PLUGIN = '''
"""An answers format plugin: `prompt_id<TAB>answer` lines."""
from lima_eval.answers import Answer, AnswersFormat
from lima_eval.errors import InputError


class TsvAnswers(AnswersFormat):
    name = "tsv-answers"

    def detect(self, path, first):
        return path.suffix == ".tsv"

    def rows(self, path):
        lines = path.read_text(encoding="utf-8").splitlines()
        return [(n, line.split("\\t")) for n, line in enumerate(lines, start=1) if line.strip()]

    def read(self, path, rows):
        out = []
        for n, cells in rows:
            if len(cells) != 2 or not cells[0]:
                raise InputError(path, "expected prompt_id<TAB>answer", line=n)
            out.append(Answer(n, cells[0], None, (cells[1],)))
        return out


class Misnamed(TsvAnswers):
    name = "not-its-entry-point"
'''


def make_site(root, entry_points):
    """A folder laid out as pip lays out an installed distribution."""
    (root / "tsvplugin").mkdir(parents=True)
    (root / "tsvplugin" / "__init__.py").write_text(TSV_PLUGIN)
    info = root / "tsvplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tsvplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return root


def cli(site, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "lima_eval.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def run_config(tmp_path, prompts_file):
    """A run whose baseline `ext` is imported (its answers come from a file), its run folder made."""
    path = write_config(tmp_path / "c.yaml", {
        "name": "tsv", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                   {"name": "ext", "backend": "imported", "model": "elsewhere"}],
        "baselines": ["ext"],
        "judge": {"backend": "scripted", "model": "fixed:Verdict: A", "order": "random"}})
    cfg = load_config(path)
    RunStore(cfg.run_dir).write_config(to_plain(cfg))
    return path, cfg.run_dir


def test_a_plugin_answers_format_is_offered_detected_and_used_end_to_end(tmp_path, run_config):
    site = make_site(tmp_path / "site", "[lima_eval.import_formats]\nanswers.tsv-answers = tsvplugin:TsvAnswers\n")
    config, run_dir = run_config
    answers = tmp_path / "ext.tsv"
    answers.write_text("".join(f"p{i}\tanswer {i} from elsewhere\n" for i in range(1, 7)) + "p9\tno such prompt\n")
    helped = cli(site, "import-answers", "--help")
    assert "[auto|alpaca-eval|mt-bench|tsv-answers|jsonl]" in helped.stdout, helped.stdout
    out = cli(site, "import-answers", run_dir, answers, "--model", "ext", "--format", "tsv-answers")
    assert out.returncode == 0, out.stderr
    assert "imported 6 answer(s) for ext; 0 already there; 1 row(s) matched no prompt" in out.stderr
    assert "unmatched" in out.stderr and "line 7: no prompt of the run has id 'p9'" in out.stderr
    gens = [g for g in RunStore(run_dir).generations().values() if g.model == "ext"]
    assert sorted(g.text for g in gens) == [f"answer {i} from elsewhere" for i in range(1, 7)]
    assert {g.sampling["format"] for g in gens} == {"tsv-answers"}
    again = cli(site, "import-answers", run_dir, answers, "--model", "ext")  # --format auto: its detect says so
    assert again.returncode == 0 and "imported 0 answer(s) for ext; 6 already there" in again.stderr, again.stderr
    judged = cli(site, "run", config, "--no-progress")  # the imported answers are judged against mine
    assert judged.returncode == 0, judged.stderr
    assert "imported answers missing" not in judged.stderr
    reported = cli(site, "report", run_dir)
    assert reported.returncode == 0, reported.stderr
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    (row,) = [r for r in summary["rows"] if r["model"] == "mine" and r["baseline"] == "ext"]
    assert row["n"] == 6


def test_a_plugin_format_named_unlike_its_entry_point_is_refused(tmp_path, run_config):
    site = make_site(tmp_path / "site", "[lima_eval.import_formats]\nanswers.tsv-answers = tsvplugin:Misnamed\n")
    answers = tmp_path / "ext.tsv"
    answers.write_text("p1\tan answer\n")
    out = cli(site, "import-answers", run_config[1], answers, "--model", "ext")
    assert_one_line_error(out, "import format 'answers.tsv-answers' (tsvplugin:Misnamed) says it is "
                               "'answers.not-its-entry-point'")
