"""Third-party kinds of things, installed as real distributions (a package plus its .dist-info with entry
points on the path, as pip lays them out): a judge folder with its own verdict parser, and a backend."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import write_config

PLUGIN = '''
"""A plugin: a judge whose replies say 'WINNER=1' / 'WINNER=2' / 'WINNER=0', its parser, and a backend."""
from dataclasses import dataclass
from pathlib import Path

from lima_eval.backends.base import Backend, Completion
from lima_eval.judging.kinds import Pairwise


def judge_folder():
    return Path(__file__).parent / "winner-judge"


def parse_boom(text):
    raise RuntimeError("cannot read this")


def parse_bogus(text):
    return ("A", None)  # a token, not one of first / second / neither


def alpaca_folder():
    return Path(__file__).parent / "alpaca-judge"


class AlpacaStyle(Pairwise):
    """A judge kind: pairwise, with AlpacaEval's placeholder names (its templates work unchanged)."""

    name = "alpaca-style"
    placeholders = frozenset({"instruction", "output_1", "output_2"})

    def values(self, item):
        one, two = item.shown()
        return {"instruction": item.prompt.text, "output_1": one[-1].text, "output_2": two[-1].text}


class NotAKind:
    pass


def parse_winner(text):
    mapping = {"1": "first", "2": "second", "0": "neither"}
    value = text.strip().partition("WINNER=")[2][:1]
    return (mapping[value], None) if value in mapping else (None, "no WINNER= line")


@dataclass
class ShoutOptions:
    volume: int = 1  # exclamation marks after each answer
    prefix: str = ""


class ShoutBackend(Backend):
    """Models answer in capitals (its own options: volume, prefix); as a judge it always names the first answer."""

    Options = ShoutOptions

    def complete(self, requests, logprobs=None):
        self.calls += len(requests)
        out = []
        for messages in requests:
            text = messages[-1]["content"]
            shout = self.options.prefix + text.upper() + "!" * self.options.volume
            out.append(Completion(text="WINNER=1" if "[Answer A]" in text else shout, finish_reason="stop"))
        return out
'''

ENTRY_POINTS = """
[lima_eval.judges]
winner = winnerplugin:judge_folder
alpaca-winner = winnerplugin:alpaca_folder

[lima_eval.judge_kinds]
alpaca-style = winnerplugin:AlpacaStyle
not-a-kind = winnerplugin:NotAKind

[lima_eval.parsers]
winner-line = winnerplugin:parse_winner
boom = winnerplugin:parse_boom
bogus = winnerplugin:parse_bogus

[lima_eval.backends]
shout = winnerplugin:ShoutBackend
"""


@pytest.fixture
def site(tmp_path):
    """A folder laid out as pip lays out an installed distribution."""
    site = tmp_path / "site"
    pkg = site / "winnerplugin"
    (pkg / "winner-judge").mkdir(parents=True)
    (pkg / "__init__.py").write_text(PLUGIN)
    (pkg / "winner-judge" / "judge.yaml").write_text("kind: pairwise\nparser: winner-line\n")
    (pkg / "winner-judge" / "prompt.txt").write_text(
        "Question: {prompt}\n\n[Answer A]\n{answer_a}\n\n[Answer B]\n{answer_b}\n\n"
        "Reply WINNER=1, WINNER=2 or WINNER=0.\n")
    (pkg / "alpaca-judge").mkdir()
    (pkg / "alpaca-judge" / "judge.yaml").write_text("kind: alpaca-style\nparser: winner-line\n")
    (pkg / "alpaca-judge" / "prompt.txt").write_text(
        "Instruction: {instruction}\n\n[Answer A]\n{output_1}\n\n[Answer B]\n{output_2}\n\nReply WINNER=1 or 2.\n")
    info = site / "winnerplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: winnerplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    return site


def cli(site, *args, cwd):
    env = dict(os.environ) | {"PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "lima_eval.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_judge_plugin_with_its_own_parser_and_a_backend_plugin_run_end_to_end(tmp_path, site, prompts_file):
    config = write_config(tmp_path / "c.yaml", {
        "name": "plug", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [{"name": "mine", "backend": "shout", "model": "m", "volume": 2, "prefix": "> "},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"],
        "judge": {"name": "winner", "backend": "shout", "model": "j", "order": "random"},
    })
    proc = cli(site, "run", config, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    judgments = [json.loads(line) for line in (tmp_path / "results/plug/judgments.jsonl").read_text().splitlines()]
    assert len(judgments) == 6 and all(j["error"] is None for j in judgments)
    # The plugin judge always names the answer shown first; its parser read that from 'WINNER=1'.
    assert all(j["verdict"] == j["shown_first"] for j in judgments)
    gens = [json.loads(line) for line in (tmp_path / "results/plug/generations.jsonl").read_text().splitlines()]
    # The plugin backend's own options (volume, prefix) reached it from the model's config section.
    prompts = [json.loads(line)["prompt"] for line in prompts_file.read_text().splitlines()]
    assert {g["text"] for g in gens if g["model"] == "mine"} == {f"> {p.upper()}!!" for p in prompts}
    # ... and they are in the resolved config as the user wrote them, flat in the model's section.
    resolved = (tmp_path / "results/plug/config.yaml").read_text()
    assert "volume: 2" in resolved and "options" not in resolved
    listed = cli(site, "judges", "list", cwd=tmp_path)
    assert "winner" in listed.stdout
    backends = cli(site, "backends", cwd=tmp_path).stdout.splitlines()
    assert "shout\twinnerplugin:ShoutBackend\tvolume=1, prefix=''" in backends


@pytest.mark.parametrize("extra,message", [
    ({"volum": 2}, r"unknown config key 'models.0.volum' \(did you mean 'volume'\?\)"),
    ({"volume": "loud"}, r"config key 'models.0.volume': expected int, got 'loud'"),
    ({"dtype": "bfloat16"}, r"unknown config key 'models.0.dtype' \(backend 'shout' has options volume, prefix\)"),
    ({"backend": "shuot"}, r"config key 'models.0.backend': unknown backend 'shuot': did you mean 'shout'\?"),
])
def test_a_plugin_backends_bad_options_are_named_before_anything_runs(tmp_path, site, prompts_file, extra, message):
    import re

    config = write_config(tmp_path / "c.yaml", {
        "name": "plug", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [{"name": "mine", "backend": "shout", "model": "m"} | extra,
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"], "judge": {"name": "winner", "backend": "shout", "model": "j"},
    })
    proc = cli(site, "run", config, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1 and re.search(message, proc.stderr), proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()  # nothing written


def test_a_judge_naming_an_unknown_parser_fails_when_loaded(tmp_path):
    from lima_eval.judging.definitions import JudgeDefinitionError, load_definition

    folder = tmp_path / "j"
    folder.mkdir()
    (folder / "judge.yaml").write_text("kind: pairwise\nparser: lima-pairwsie\n")
    (folder / "prompt.txt").write_text("{prompt} {answer_a} {answer_b}\n")
    with pytest.raises(JudgeDefinitionError, match=r"key 'parser': unknown verdict parser 'lima-pairwsie': "
                                                   r"did you mean 'lima-pairwise'\?"):
        load_definition(str(folder))


def test_a_judge_kind_plugin_runs_end_to_end(tmp_path, site, prompts_file):
    """A plugin's judge kind (pairwise with AlpacaEval's placeholder names) judges a run like a built-in kind."""
    config = write_config(tmp_path / "c.yaml", {
        "name": "kind", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"], "judge": {"name": "alpaca-winner", "backend": "shout", "model": "j"},
    })
    proc = cli(site, "run", config, "--no-progress", "--no-cache", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    judgments = [json.loads(line) for line in (tmp_path / "results/kind/judgments.jsonl").read_text().splitlines()]
    assert len(judgments) == 12 and all(j["verdict"] == j["shown_first"] for j in judgments)  # both orders
    listed = cli(site, "judges", "list", cwd=tmp_path).stdout
    assert any(line.startswith("alpaca-winner\talpaca-style\t") for line in listed.splitlines())


@pytest.mark.parametrize("yaml_text,template,message", [
    ("kind: alpaca-styel\n", "{instruction} {output_1} {output_2}",
     r"key 'kind': 'alpaca-styel' is not one of .*alpaca-style.* \(did you mean 'alpaca-style'\?\)"),
    ("kind: alpaca-style\n", "{prompt} {answer_a} {answer_b}",
     r"a alpaca-style template must use exactly \{instruction\}, \{output_1\}, \{output_2\}"),
    ("kind: alpaca-style\n", "{instruction} {output_1} {output_2} {answer}", r"must use exactly"),
    ("kind: not-a-kind\n", "{prompt}", r"winnerplugin:NotAKind\) is not a JudgeKind subclass"),
])
def test_bad_judges_of_a_plugin_kind_are_named(tmp_path, site, yaml_text, template, message):
    import re

    folder = tmp_path / "judges" / "mine"
    folder.mkdir(parents=True)
    (folder / "judge.yaml").write_text(yaml_text + "parser: winner-line\n")
    (folder / "prompt.txt").write_text(template)
    proc = cli(site, "judges", "list", cwd=tmp_path)
    assert proc.returncode == 1 and re.search(message, proc.stderr), proc.stderr[-2000:]


@pytest.mark.parametrize("parser,error", [("boom", "parser 'boom' failed: RuntimeError: cannot read this"),
                                          ("bogus", "parser 'bogus' returned 'A', not one of the judge's options")])
def test_a_broken_parser_records_parse_errors_and_the_paid_replies_stay_in_the_cache(tmp_path, site, prompts_file,
                                                                                     parser, error):
    template = (site / "winnerplugin" / "winner-judge" / "prompt.txt").read_text()
    folder = tmp_path / "judges" / "broken"
    folder.mkdir(parents=True)
    (folder / "judge.yaml").write_text(f"kind: pairwise\nparser: {parser}\n")
    (folder / "prompt.txt").write_text(template)
    data = {"name": "p", "output_dir": str(tmp_path / "results"),
            "benchmark": {"name": "file", "path": str(prompts_file)},
            "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                       {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
            "baselines": ["base"],
            "judge": {"name": str(folder), "backend": "shout", "model": "j", "order": "random",
                      "cache_path": str(tmp_path / "cache.sqlite")}}
    proc = cli(site, "run", write_config(tmp_path / "c.yaml", data), "--no-progress", cwd=tmp_path)
    judgments = [json.loads(x) for x in (tmp_path / "results/p/judgments.jsonl").read_text().splitlines()]
    assert proc.returncode == 0 and len(judgments) == 6, proc.stderr[-2000:]
    assert all(j["error"] == error and j["error_kind"] == "parse" and j["verdict"] is None for j in judgments)
    # The same questions with a working parser: every reply comes from the cache (nothing is asked again).
    data["judge"]["name"] = "winner"
    data["name"] = "q"
    again = cli(site, "run", write_config(tmp_path / "d.yaml", data), "--no-progress", cwd=tmp_path)
    assert "6 new (6 from the judge cache)" in again.stderr, again.stderr[-2000:]
