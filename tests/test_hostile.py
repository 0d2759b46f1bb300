"""Bad input, table-driven: every case runs a real command on a finished run folder (or a new one) and asserts a
non-zero exit, a message that names the file, the line/row and the field where it has them, no traceback, and a
run folder byte-identical before and after (nothing lost, changed or written, no stub folder left)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from lima_eval.cli import main

GOOD_PROMPTS = [{"id": f"p{i}", "prompt": f"Question {i}?"} for i in range(1, 5)]


def config(root: Path, **changes) -> dict:
    data = {
        "name": "good", "output_dir": str(root / "results"),
        "benchmark": {"name": "file", "path": str(root / "prompts.jsonl")},
        "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"},
                   {"name": "ext", "backend": "imported", "model": "imported:ext"}],
        "baselines": ["base"],
        "judge": {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B"},
        "judges": [{"name": "lima-absolute", "backend": "scripted", "model": "cycle:Rating: pass|Rating: fail"}],
    }
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


def cli(*args) -> tuple[int, str]:
    """Run the CLI in this process; (exit code, stderr) are returned by the caller's capsys."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0), ""
    return 0, ""


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    (root / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in GOOD_PROMPTS))
    (root / "c.yaml").write_text(yaml.safe_dump(config(root)))
    assert cli("run", root / "c.yaml", "--no-progress", "--no-cache")[0] == 0
    return root


@pytest.fixture
def site(finished, tmp_path) -> Path:
    """A copy of the finished run's world (prompts, config, results) for one case to attack."""
    shutil.copytree(finished, tmp_path / "w")
    return tmp_path / "w"


def snapshot(root: Path) -> dict[str, bytes]:
    results = root / "results"
    return {str(p.relative_to(results)): p.read_bytes() for p in sorted(results.rglob("*")) if p.is_file()}


# --- the cases: (id, files to write {name: text or bytes}, command, what the message must contain) ----------
RUN = "results/good"
BAD_PROMPTS = "bad_prompts"


def prompts_case(name: str, content, expect: list[str], suffix: str = ".jsonl"):
    """A run whose benchmark file is bad: nothing may be written (the good run's config stays)."""
    return (f"benchmark-{name}", {f"{BAD_PROMPTS}{suffix}": content},
            ("run", "{root}/bad.yaml", "--no-progress"), expect,
            {"benchmark__path": f"{{root}}/{BAD_PROMPTS}{suffix}"})


def config_case(case: str, expect: list[str], **changes):
    return (f"config-{case}", {}, ("run", "{root}/bad.yaml", "--no-progress"), expect, changes)


def human_case(name: str, text, expect: list[str]):
    return (f"human-{name}", {"labels.csv": text}, ("import-human", RUN, "{root}/labels.csv"), expect, None)


def judge_case(name: str, yaml_text, template, expect: list[str]):
    files = {"judges/broken/judge.yaml": yaml_text}
    if template is not None:
        files["judges/broken/prompt.txt"] = template
    return (f"judge-{name}", files, ("run", "{root}/bad.yaml", "--no-progress"), expect,
            {"judge__name": "{root}/judges/broken"})


def rules_case(name: str, text, expect: list[str]):
    return (f"rules-{name}", {"rules.yaml": text}, ("check", RUN, "--rules", "{root}/rules.yaml"), expect, None)


def foreign_case(name: str, fmt: str, text, expect: list[str], target: str = RUN):
    return (f"foreign-{fmt}-{name}", {"foreign.json" if fmt != "mt-bench-pair" else "foreign.jsonl": text},
            ("import-judgments", target, "{root}/foreign.json" + ("l" if fmt == "mt-bench-pair" else ""), "--format",
             fmt), expect, None)


def answers_case(name: str, text, expect: list[str], model: str = "ext", target: str = RUN):
    return (f"answers-{name}", {"answers.jsonl": text}, ("import-answers", target, "{root}/answers.jsonl", "--model",
                                                         model), expect, None)


def bomb(levels: int = 9, fan: int = 9) -> str:
    """A 1 KB flow-style YAML value whose aliases expand to fan ** levels strings (a "billion laughs")."""
    parts = ["&l0 [" + ",".join(["lol"] * fan) + "]"]
    parts += [f"&l{i} [" + ",".join([f"*l{i - 1}"] * fan) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


def deep(n: int = 100_000) -> str:
    """A JSON (and flow-style YAML) value nested n deep."""
    return "[" * n + "]" * n


def yaml_case(case: str, value: str, expect: list[str], key: str = "name", extra: tuple[str, ...] = (),
              command: str = "run"):
    """A run config written as YAML text with `key` (dotted) holding `value` verbatim, so aliases and nesting reach
    the reader as a user's file would bring them. A new run name: nothing may be generated or written."""
    marker = "MARKER-VALUE"
    data = config(Path("{root}"), name="fresh")
    node = data
    *parents, last = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = marker
    text = yaml.safe_dump(data, allow_unicode=True).replace(marker, value)
    return (f"yaml-{case}", {"bad.yaml": text}, (command, "{root}/bad.yaml", *extra, "--no-progress"), expect, None)


def card_case(case: str, files: dict, judge: str, gold: str, expect: list[str]):
    """`lima-eval judge-card` of a bad judge or gold file: no card folder may be left behind."""
    return (f"card-{case}", files, ("judge-card", judge, "--gold", gold, "--results", "{root}/results",
                                    "--no-progress"), expect, None)


SCRIPTED = {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B"}
JURY_CARD = yaml.safe_dump({"jury": [SCRIPTED, SCRIPTED | {"stop_when_decided": {"threshold": 0.5}}]})
HEADER = "prompt_id,model_a,model_b,label,annotator,comment\n"
RHEADER = "prompt_id,model,label,annotator\n"
ALPACA = {"instruction": "Question 1?", "output_1": "a", "generator_1": "base", "output_2": "b",
          "generator_2": "mine", "annotator": "x", "preference": 2.0}

CASES = [
    # benchmark files
    prompts_case("not-json", '{"id": "p1", "prompt": "ok"}\n{"id": "p2", "prompt": \n',
                 ["bad_prompts.jsonl", "line 2", "not valid JSON"]),
    prompts_case("not-utf8", b'{"id": "p1", "prompt": "caf\xe9"}\n', ["bad_prompts.jsonl", "line 1", "not UTF-8"]),
    prompts_case("empty", "", ["has no prompts"]),
    prompts_case("array-row", '[1, 2]\n', ["line 1", "expected a JSON object"]),
    prompts_case("no-text", '{"id": "p1", "answer": "x"}\n', ["line 1", "no prompt text"]),
    prompts_case("empty-text", '{"id": "p1", "prompt": "  "}\n', ["line 1", "field 'prompt'", "empty prompt text"]),
    prompts_case("duplicate-id", '{"id": "p1", "prompt": "a"}\n{"id": "p1", "prompt": "b"}\n',
                 ["line 2", "field 'id'", "duplicate prompt id 'p1'"]),
    prompts_case("missing-id-among-ids", '{"id": "p1", "prompt": "a"}\n{"prompt": "b"}\n',
                 ["line 2", "field 'id'", "missing prompt id"]),
    prompts_case("nan-id", '{"id": NaN, "prompt": "a"}\n', ["line 1", "field 'id'", "not an id"]),
    prompts_case("float-id", '{"id": 1.5, "prompt": "a"}\n', ["line 1", "field 'id'", "not an id"]),
    prompts_case("list-id", '{"id": [1], "prompt": "a"}\n', ["line 1", "field 'id'", "not an id"]),
    prompts_case("nul-id", '{"id": "p\\u0000", "prompt": "a"}\n', ["line 1", "field 'id'", "control character"]),
    prompts_case("missing-file", None, ["bad_prompts.jsonl", "file not found"]),
    prompts_case("json-not-list", '{"a": 1}', ["expected a JSON list"], suffix=".json"),
    prompts_case("csv-no-prompt-column", "id,text\n1,hi\n",
                 ["bad_prompts.csv", "line 1", "field 'prompt'"], suffix=".csv"),
    prompts_case("csv-unclosed-quote", 'id,prompt\n1,"hi\n2,there\n',
                 ["bad_prompts.csv", "line 2", "not valid CSV"], suffix=".csv"),
    prompts_case("csv-nul", "id,prompt\n1,h\x00i\n", ["line 2", "field 'prompt'", "NUL"], suffix=".csv"),
    prompts_case("csv-huge-cell", "id,prompt\n1," + "x" * (17 * 2**20) + "\n",
                 ["line 2", "not valid CSV"], suffix=".csv"),
    prompts_case("csv-extra-cells", "id,prompt\n1,hi,extra\n",
                 ["line 2", "3 cells but the header has 2"], suffix=".csv"),
    # configs (on an existing run: its config.yaml must stay as it is)
    config_case("backend-typo", ["models.0.backend", "did you mean 'scripted'"], models__0__backend="scriptd"),
    config_case("judge-backend-typo", ["judge.backend", "unknown backend"], judge__backend="opneai"),
    config_case("unknown-judge", ["unknown judge 'lima-pairwize'", "did you mean 'lima-pairwise'"],
                judge__name="lima-pairwize"),
    config_case("negative-concurrency", ["models.0.concurrency", "out of range"], models__0__concurrency=-1),
    config_case("zero-max-new-tokens", ["models.0.sampling.max_new_tokens", "out of range"],
                models__0__sampling={"max_new_tokens": 0}),
    config_case("negative-limit", ["benchmark.limit", "out of range"],
                benchmark={"name": "file", "path": "{root}/prompts.jsonl", "limit": -3}),
    config_case("top-p-above-one", ["judge.sampling.top_p", "out of range"], judge__sampling={"top_p": 1.5}),
    config_case("negative-timeout", ["judge.timeout", "out of range"], judge__backend="openai",
                judge__base_url="http://127.0.0.1:9/v1", judge__timeout=-5),
    config_case("negative-retries", ["judge.max_retries", "out of range"], judge__backend="openai",
                judge__base_url="http://127.0.0.1:9/v1", judge__max_retries=-1),
    config_case("nan-temperature", ["models.0.sampling.temperature", "out of range"],
                models__0__sampling={"temperature": float("nan")}),
    config_case("top-logprobs-over-20", ["judge.top_logprobs", "out of range"], judge__top_logprobs=50),
    config_case("option-of-another-backend", ["models.0.dtype", "backend 'scripted' has no options"],
                models__0__dtype="bfloat16"),
    config_case("run-name-escapes", ["config key 'name'", "plain folder name"], name="../escaped"),
    config_case("run-name-nul", ["config key 'name'", "NUL character"], name="go\x00od"),
    config_case("run-name-control", ["config key 'name'", "plain folder name"], name="go\tod"),
    config_case("run-name-dotdot", ["config key 'name'", "plain folder name"], name=".."),
    config_case("run-name-backslash", ["config key 'name'", "plain folder name"], name="a\\..\\b"),
    config_case("sft-name-escapes", ["sft.name", "plain folder name"],
                sft={"name": "../../../escaped", "base": "embedded:tiny-random"}),
    config_case("sft-bad-data", ["sft-data.jsonl", "file not found"],
                sft={"name": "tuned", "base": "embedded:tiny-random", "data": "{root}/sft-data.jsonl"}),
    config_case("model-name-control-char", ["models.0.name", "control character"], models__0__name="mi\tne",
                baselines=["base"]),
    config_case("output-dir-is-a-file", ["output_dir", "is a file"], output_dir="{root}/prompts.jsonl"),
    config_case("api-key-missing", ["needs an API key", "LIMA_HOSTILE_NO_SUCH_KEY"], judge__backend="openai",
                judge__api_key_env="LIMA_HOSTILE_NO_SUCH_KEY"),
    config_case("judge-name-nul", ["judge.name", "NUL character"], judge__name="lima-pair\x00wise"),
    config_case("benchmark-path-nul", ["benchmark.path", "NUL character"],
                benchmark={"name": "file", "path": "{root}/prom\x00pts.jsonl"}),
    config_case("output-dir-nul", ["output_dir", "NUL character"], output_dir="{root}/res\x00ults"),
    config_case("sft-out-nul", ["sft.out", "NUL character"],
                sft={"name": "tuned", "base": "embedded:tiny-random", "out": "{root}/o\x00ut"}),
    config_case("require-unknown-bound", ["judge.require.min_kappa", "did you mean 'min_judge_kappa'"],
                judge__require={"min_kappa": 0.5}),
    config_case("require-not-a-number", ["judge.require.max_flip_rate", "expected a number"],
                judge__require={"max_flip_rate": "low"}),
    config_case("baseline-unknown", ["baselines", "'ghost' is not a model"], baselines=["ghost"]),
    config_case("bad-order", ["judge.order", "not one of both, random, both-if-close"], judge__order="sometimes"),
    # issue 27: a typo of a judge's or model's own key lists what the section takes and suggests the nearest; an
    # error a --set caused names the flag
    config_case("judge-key-typo", ["bad.yaml", "line ", "unknown config key 'judge.logprob' (did you mean 'logprobs'?)",
                                   "; judge takes backend, model, ", "order", "backend 'scripted' has no options"],
                judge__logprob=True),
    config_case("model-key-typo", ["bad.yaml", "line ", "'models.0.concurency' (did you mean 'concurrency'?)",
                                   "; models.0 takes backend, model, ", "backend 'scripted' has no options"],
                models__0__concurency=2),
    ("set-judge-key-typo", {}, ("run", "{root}/c.yaml", "--set", "judge.ordr=both", "--no-progress"),
     ["error: --set judge.ordr=both: unknown config key 'judge.ordr' (did you mean 'order'?)", "logprobs"], None),
    ("set-model-key-typo", {}, ("run", "{root}/c.yaml", "--set", "models.mine.concurency=2", "--no-progress"),
     ["error: --set models.mine.concurency=2: unknown config key 'models.0.concurency' (did you mean 'concurrency'?)"],
     None),
    ("set-option-the-new-backend-lacks", {}, ("run", "{root}/c.yaml", "--set", "judge.backend=openai", "--set",
                                              "judge.device=cpu", "--no-progress"),
     ["error: --set judge.device=cpu: unknown config key 'judge.device' (backend 'openai' has options base_url",
      "device is an option of backend hf"], None),
    # judge folders
    judge_case("bad-yaml", "kind: [pairwise\n", "{prompt} {answer_a} {answer_b}", ["judge.yaml", "not valid YAML"]),
    judge_case("yaml-not-mapping", "- pairwise\n", "{prompt} {answer_a} {answer_b}",
               ["judge.yaml", "expected a mapping"]),
    judge_case("not-utf8", b"kind: pairwise\ndescription: caf\xe9\n", "{prompt} {answer_a} {answer_b}",
               ["judge.yaml", "line 2", "not UTF-8"]),
    judge_case("no-template", "kind: pairwise\n", None, ["key 'template'", "prompt.txt", "file not found"]),
    judge_case("unknown-kind", "kind: pairwize\n", "{prompt}", ["key 'kind'", "did you mean 'pairwise'"]),
    judge_case("unknown-parser", "kind: pairwise\nparser: lima-pairwsie\n", "{prompt} {answer_a} {answer_b}",
               ["key 'parser'", "did you mean 'lima-pairwise'"]),
    judge_case("missing-placeholder", "kind: pairwise\nparser: lima-pairwise\n", "{prompt} {answer_a}",
               ["prompt.txt", "must use exactly"]),
    judge_case("rating-without-labels", "kind: rating\nparser: lima-absolute\n", "{prompt} {answer}",
               ["key 'labels'", "needs its scale"]),
    judge_case("bad-prices", "kind: pairwise\nparser: lima-pairwise\nprices: {gpt-4o: {input: cheap}}\n",
               "{prompt} {answer_a} {answer_b}", ["key 'prices.gpt-4o'", "as numbers"]),
    # human labels
    human_case("missing-column", "prompt_id,model_a,model_b,annotator\np1,mine,base,ann\n",
               ["labels.csv", "line 1", "field 'label'"]),
    human_case("bad-label", HEADER + "p1,mine,base,maybe,ann,\n", ["labels.csv", "line 2, field 'label'"]),
    human_case("unknown-prompt", HEADER + "p99,mine,base,a,ann,\n", ["line 2, field 'prompt_id'"]),
    human_case("unknown-model", HEADER + "p1,mien,base,a,ann,\n", ["line 2, field 'model_a'"]),
    human_case("empty-annotator", HEADER + "p1,mine,base,a,,\n", ["line 2, field 'annotator'", "empty"]),
    human_case("unclosed-quote", HEADER + 'p1,mine,base,a,ann,"great\np2,mine,base,b,ann,ok\n',
               ["labels.csv", "line 2", "not valid CSV"]),
    human_case("nul-in-cell", HEADER + "p1,mine,base,a,an\x00n,\n", ["line 2", "field 'annotator'", "NUL"]),
    human_case("not-utf8", (HEADER + "p1,mine,base,a,ann,caf\xe9\n").encode("latin-1"),
               ["labels.csv", "line 2", "not UTF-8"]),
    human_case("huge-cell", HEADER + "p1,mine,base,a,ann," + "x" * (17 * 2**20) + "\n",
               ["labels.csv", "line 2", "not valid CSV"]),
    human_case("rating-bad-label", RHEADER + "p1,mine,superb,ann\n", ["line 2, field 'label'"]),
    human_case("rating-unknown-model", RHEADER + "p1,ghost,pass,ann\n", ["line 2, field 'model'"]),
    human_case("empty-file", "", ["labels.csv", "line 1"]),
    # rules files for check
    rules_case("not-yaml", "rules: [\n", ["rules.yaml", "not valid YAML"]),
    rules_case("not-utf8", b"rules:\n  - {model: mine, min_win_rate: 0.5, comment: caf\xe9}\n",
               ["rules.yaml", "not UTF-8"]),
    rules_case("no-rules", "level: 0.9\n", ["rules.yaml", "non-empty 'rules' list"]),
    rules_case("unknown-model", "rules:\n  - {model: ghost, min_win_rate: 0.5}\n", ["ghost"]),
    rules_case("judge-rule-without-a-card", "rules:\n  - {min_judge_kappa: 0.5}\n", ["has no judge card"]),
    rules_case("judge-rule-unknown-judge", "rules:\n  - {max_position_bias: 0.1, judge: nobody}\n",
               ["no judge 'nobody'"]),
    rules_case("threshold-not-number", "rules:\n  - {model: mine, min_win_rate: lots}\n",
               ["min_win_rate", "expected a number"]),
    # foreign judgment files
    foreign_case("not-json", "alpaca-eval", "[{", ["foreign.json", "not valid JSON"]),
    foreign_case("not-list", "alpaca-eval", '{"a": 1}', ["foreign.json", "expected a JSON list"]),
    foreign_case("missing-field", "alpaca-eval", json.dumps([{k: v for k, v in ALPACA.items() if k != "annotator"}]),
                 ["foreign.json", "line 1", "field 'annotator'"]),
    foreign_case("bad-preference", "alpaca-eval", json.dumps([ALPACA | {"preference": 7}]),
                 ["line 1", "field 'preference'"]),
    foreign_case("bad-winner", "mt-bench-pair", json.dumps({"question_id": 1, "model_1": "a", "model_2": "b",
                                                             "g1_winner": "model_3", "g2_winner": "tie"}) + "\n",
                 ["foreign.jsonl", "line 1", "field 'g1_winner'"]),
    foreign_case("control-char-generator", "alpaca-eval", json.dumps([ALPACA | {"generator_2": "\tx"}]),
                 ["line 1", "field 'generator_2'", "not a name"]),
    foreign_case("control-char-generator-new-folder", "alpaca-eval", json.dumps([ALPACA | {"generator_2": "mi\nne"}]),
                 ["line 1", "field 'generator_2'", "not a name"], target="results/fresh"),
    foreign_case("bad-label", "pandalm", json.dumps([{"idx": 1, "cmp_key": "x_y", "annotator1": "7"}]),
                 ["line 1", "field 'annotator1'"]),
    foreign_case("judge-results-before-test-set", "pandalm", json.dumps([{"idx": 1, "gpt_result": "1"}]),
                 ["line 1", "field 'cmp_key'", "import PandaLM's test set"]),
    foreign_case("conflicting-duplicate", "alpaca-eval", json.dumps([ALPACA, ALPACA | {"preference": 1.0}]),
                 ["line 2", "field 'preference'", "the same item as line 1 with another label"]),
    foreign_case("matches-no-prompt", "alpaca-eval", json.dumps([ALPACA | {"instruction": "Something else"}]),
                 ["no row's instruction is a prompt of the run", "nothing imported"]),
    foreign_case("new-folder-bad-file", "alpaca-eval", "[{",
                 ["foreign.json", "not valid JSON"], target="results/fresh"),
    # answers
    answers_case("not-json", '{"prompt_id": "p1", "answer": \n', ["answers.jsonl", "line 1", "not valid JSON"]),
    answers_case("model-not-imported", '{"prompt_id": "p1", "answer": "x"}\n',
                 ["backend 'scripted'", "backend: imported"], model="base"),
    answers_case("unknown-prompt", '{"prompt_id": "p99", "answer": "x"}\n',
                 ["answers.jsonl", "line 1", "p99", "nothing imported"]),
    answers_case("no-answer", '{"prompt_id": "p1"}\n', ["answers.jsonl", "line 1"]),
    answers_case("not-utf8", b'{"prompt_id": "p1", "answer": "caf\xe9"}\n', ["answers.jsonl", "line 1", "not UTF-8"]),
    answers_case("unknown-model", '{"prompt_id": "p1", "answer": "x"}\n', ["no model named 'ghost'"], model="ghost"),
    # --- issue 25: the second hostile campaign ---
    # juries and judges are checked before anything is generated (a new run: nothing may appear)
    config_case("empty-jury-is-no-judge", ["judge.model' is missing", "a jury: of two or more jurors"],
                name="fresh", judge={"jury": []}),
    config_case("judge-without-model", ["judge.model' is missing"], name="fresh", judge={"backend": "scripted"}),
    config_case("extra-judge-without-model", ["judges.0.model' is missing"], name="fresh",
                judges=[{"name": "lima-absolute", "backend": "scripted"}]),
    config_case("juror-without-model", ["judge.jury.1.model' is missing"], name="fresh",
                judge={"jury": [SCRIPTED, {"backend": "scripted"}]}),
    config_case("juror-own-order", ["judge.jury.0.order", "a juror takes the jury's order"], name="fresh",
                judge={"jury": [SCRIPTED | {"order": "sideways"}, SCRIPTED]}),
    config_case("juror-own-random-order", ["judge.jury.1.order", "set it on the jury (judge.order)"], name="fresh",
                judge={"jury": [SCRIPTED, SCRIPTED | {"order": "random"}]}),
    config_case("juror-stop-when-decided", ["judge.jury.0.stop_when_decided", "a juror takes the jury's"],
                name="fresh", judge={"jury": [SCRIPTED | {"stop_when_decided": {"threshold": 0.5}}, SCRIPTED]}),
    config_case("juror-both-if-close", ["judge.jury.1.order"], name="fresh",
                judge={"jury": [SCRIPTED, SCRIPTED | {"order": "both-if-close"}]}),
    config_case("juror-own-require", ["judge.jury.0.require"], name="fresh",
                judge={"jury": [SCRIPTED | {"require": {"max_flip_rate": 0.1}}, SCRIPTED]}),
    config_case("juror-own-abstain", ["judge.jury.0.abstain"], name="fresh",
                judge={"jury": [SCRIPTED | {"abstain": True}, SCRIPTED]}),
    card_case("jury-with-adaptive-juror", {"jury.yaml": JURY_CARD}, "{root}/jury.yaml", "pandalm",
              ["jury.1.stop_when_decided", "a juror takes the jury's"]),
    # prices: NaN passed every budget check, negative prices gave negative costs
    judge_case("nan-price", "kind: pairwise\nparser: lima-pairwise\nprices: {gpt-4o: {input: .nan, output: 1}}\n",
               "{prompt} {answer_a} {answer_b}", ["judge.yaml", "key 'prices.gpt-4o.input'", "not a price"]),
    judge_case("infinite-price", "kind: pairwise\nparser: lima-pairwise\nprices: {gpt-4o: {input: 1, output: .inf}}\n",
               "{prompt} {answer_a} {answer_b}", ["key 'prices.gpt-4o.output'", "not a price"]),
    judge_case("negative-price", "kind: pairwise\nparser: lima-pairwise\nprices: {gpt-4o: {input: -2, output: 1}}\n",
               "{prompt} {answer_a} {answer_b}", ["key 'prices.gpt-4o.input'", "-2 is not a price"]),
    # YAML aliases (billion laughs) and deep nesting: refused before they are built, the value never repeated whole
    yaml_case("alias-bomb-name", bomb(), ["bad.yaml", "aliases", "refused"]),
    yaml_case("alias-bomb-seed", bomb(), ["bad.yaml", "aliases", "refused"], key="seed"),
    yaml_case("alias-bomb-require", bomb(), ["bad.yaml", "aliases"], key="judge.require.min_judge_kappa"),
    yaml_case("alias-bomb-dry-run", bomb(), ["bad.yaml", "aliases"], key="models", extra=("--dry-run",)),
    yaml_case("deep-name", deep(), ["bad.yaml", "line ", "nested deeper than 100 levels"]),
    yaml_case("deep-block", "\n" + "".join("  " * (i + 1) + "- \n" for i in range(150)),
              ["bad.yaml", "nested deeper than 100 levels"], key="judges"),
    ("set-alias-bomb", {}, ("run", "{root}/c.yaml", "--set", "name=" + bomb(), "--no-progress"),
     ["--set name", "aliases", "refused"], None),
    ("set-deep", {}, ("run", "{root}/c.yaml", "--set", "seed=" + deep(), "--no-progress"),
     ["--set seed", "nested deeper"], None),
    ("set-not-yaml", {}, ("run", "{root}/c.yaml", "--set", "seed=[", "--no-progress"), ["--set seed", "not valid YAML"],
     None),
    judge_case("labels-alias-bomb", f"kind: rating\nparser: lima-absolute\nlabels: {bomb()}\n", "{prompt} {answer}",
               ["judge.yaml", "aliases", "refused"]),
    judge_case("deep-judge-yaml", f"kind: pairwise\nlabels: {deep()}\n", "{prompt} {answer_a} {answer_b}",
               ["judge.yaml", "nested deeper"]),
    rules_case("alias-bomb", f"rules: {bomb()}\n", ["rules.yaml", "aliases"]),
    rules_case("deep", f"rules: {deep()}\n", ["rules.yaml", "nested deeper"]),
    rules_case("too-large", "rules:\n" + "  - {model: mine, min_win_rate: 0.5}\n" * 140_000, ["rules.yaml", "refused"]),
    prompts_case("deep-row", '{"id": "p1", "prompt": "a", "meta": ' + deep() + "}\n", ["line 1", "nested deeper"]),
    prompts_case("deep-list", deep(), ["bad_prompts.json", "nested deeper"], suffix=".json"),
    prompts_case("deep-in-string-is-text", '{"id": "p1", "prompt": "' + "[" * 500 + '"}\n' + deep(200) + "\n",
                 ["line 2", "nested deeper"]),
    answers_case("deep", '{"prompt_id": "p1", "answer": ' + deep() + "}\n", ["answers.jsonl", "line 1", "nested"]),
    foreign_case("deep", "alpaca-eval", deep(), ["foreign.json", "nested deeper"]),
    foreign_case("deep-row", "mt-bench-pair", '{"question_id": 1, "x": ' + deep() + "}\n",
                 ["foreign.jsonl", "line 1", "nested deeper"]),
    card_case("deep-judge-file", {"card.yaml": "judge: " + deep() + "\n"}, "{root}/card.yaml", "pandalm",
              ["card.yaml", "nested deeper"]),
    card_case("alias-judge-file", {"card.yaml": f"judge: {{name: lima-pairwise, x: {bomb()}}}\n"}, "{root}/card.yaml",
              "pandalm", ["card.yaml", "aliases"]),
    card_case("deep-gold-file", {"gold.json": deep(), "judge.yaml": yaml.safe_dump(SCRIPTED)}, "{root}/judge.yaml",
              "{root}/gold.json",
              ["gold.json", "nested deeper"]),
    # import-answers into a new folder: ids are checked as in a benchmark file
    answers_case("nan-id-new-folder", '{"prompt_id": NaN, "prompt": "Q?", "answer": "x"}\n',
                 ["line 1", "field 'prompt_id'", "not an id"], target="results/fresh"),
    answers_case("object-id-new-folder", '{"prompt_id": {"a": 1}, "prompt": "Q?", "answer": "x"}\n',
                 ["line 1", "field 'prompt_id'", "not an id"], target="results/fresh"),
    answers_case("empty-id-new-folder", '{"prompt_id": "", "prompt": "Q?", "answer": "x"}\n',
                 ["line 1", "field 'prompt_id'", "not an id"], target="results/fresh"),
    answers_case("float-id-new-folder", '{"prompt_id": 1.5, "answer": "x"}\n',
                 ["line 1", "field 'prompt_id'", "not an id"], target="results/fresh"),
    answers_case("mt-bench-nan-question", '{"question_id": NaN, "choices": [{"turns": ["x"]}]}\n',
                 ["line 1", "field 'question_id'", "missing or not a int or str"], target="results/fresh"),
    answers_case("mt-bench-empty-question", '{"question_id": " ", "choices": [{"turns": ["x"]}]}\n',
                 ["line 1", "field 'question_id'", "not an id"], target="results/fresh"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named_and_changes_nothing(site, case, capsys):
    name, files, command, expect, changes = case
    for rel, content in files.items():
        if content is None:
            continue
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.replace("{root}", str(site)).encode())
    if changes is not None:
        fill = {k: json.loads(json.dumps(v).replace("{root}", str(site))) for k, v in changes.items()}
        data = config(site, **fill)
        data["output_dir"] = data["output_dir"].replace("{root}", str(site))
        (site / "bad.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    before = snapshot(site)
    capsys.readouterr()
    code, _ = cli(*[str(a).replace("{root}", str(site)) if not str(a).startswith("results/") else site / a
                    for a in command])
    err = capsys.readouterr().err
    assert code != 0, f"{name}: exit 0\n{err}"
    assert "Traceback" not in err
    first = err.strip().splitlines()[0] if err.strip() else ""
    lines = err.strip().splitlines()
    if not name.startswith("human-") or name in ("human-missing-column", "human-empty-file"):
        assert len(lines) == 1, f"{name}: more than one line:\n{err}"
    for part in expect:
        assert part in err, f"{name}: {part!r} not in:\n{err}"
    assert first.startswith("error: ")
    assert snapshot(site) == before, f"{name}: the results folder changed"
    assert not (site / "results" / "fresh").exists() and not (site / "escaped").exists()


def test_a_report_never_replaces_a_good_one_with_an_empty_one(site, capsys):
    """After the config changes so that no judgment matches it, `report` keeps the report it had."""
    run = site / "results" / "good"
    data = yaml.safe_load((run / "config.yaml").read_text())
    data["judge"]["model"] = "cycle:Verdict: B"  # another judge identity: none of the judgments on disk are its
    data["judges"] = []
    (run / "config.yaml").write_text(yaml.safe_dump(data))
    before = {p.name: p.read_bytes() for p in (run / "report").iterdir()}
    capsys.readouterr()
    code, _ = cli("report", run)
    err = capsys.readouterr().err
    assert code == 1 and "the existing report" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in (run / "report").iterdir()} == before


def test_the_leaderboard_skips_a_broken_run_and_names_it(site, capsys, caplog):
    broken = site / "results" / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("models: [\n")
    (site / "results" / "also-broken").mkdir()
    (site / "results" / "also-broken" / "config.yaml").write_text(yaml.safe_dump({"name": "x", "models": []}))
    capsys.readouterr()
    code, _ = cli("leaderboard", site / "results")
    err = capsys.readouterr().err + caplog.text  # warnings go to stderr through logging
    assert code == 0, err
    assert f"skipping {broken}" in err and f"skipping {site / 'results' / 'also-broken'}" in err
    board = (site / "results" / "leaderboard" / "leaderboard.csv").read_text()
    assert ",good," in board  # the good run is on it


def test_pairs_left_unjudged_by_failed_answers_are_counted_per_row(tmp_path, prompts_file):
    """A generation that fails leaves its pair unjudged: the row says how many prompts are missing, the report
    notes it, and the run exits 1 saying the generation failed."""
    from conftest import run_cli, server_run_config

    from lima_eval.testing.openai_server import OpenAITestServer

    def fault(n, body):  # model "mine" cannot answer two of the six prompts
        text = body["messages"][-1]["content"]
        return ("500", None) if body["model"] == "mine" and text in ("Name a colour.", "Give a fruit.") else None

    with OpenAITestServer(fault=fault) as server:
        config = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)}, name="gaps")
        proc = run_cli("run", str(config), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1 and "2 generation(s)" in proc.stderr
    summary = json.loads((tmp_path / "results/gaps/report/summary.json").read_text())
    (row,) = summary["rows"]
    assert row["missing"] == 2 and row["n"] + row["errors"] == 4
    assert any("2 prompt(s) have no judgment" in n for n in summary["notes"])
    report = (tmp_path / "results/gaps/report/report.md").read_text()
    assert "| errors | missing |" in report


def test_names_reach_markdown_and_html_as_text_and_the_lc_column_says_what_it_is(tmp_path, capsys):
    """A model name carrying HTML and a table pipe is shown as text in report.md, report.html and the leaderboard."""
    from lima_eval.judging.foreign import import_judgments
    from lima_eval.report.build import build_report
    from lima_eval.report.leaderboard import write_leaderboard

    evil = '<img src=x onerror="alert(1)">|x'
    rows = [{"instruction": f"Instruction {i}", "output_1": "base", "generator_1": "base", "output_2": "<b>bold</b>",
             "generator_2": evil, "annotator": "judge", "preference": 1.0 + s} for i, s in enumerate((1.0, 0.0, 0.5))]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    import_judgments(tmp_path / "results" / "run", tmp_path / "a.json", "alpaca-eval")
    report = build_report(tmp_path / "results" / "run")
    board = write_leaderboard(tmp_path / "results")
    for text in ((report / "report.md").read_text(), (board / "leaderboard.md").read_text()):
        assert "<img" not in text and "&lt;img src=x" in text and "\\|x" in text
        assert "not AlpacaEval's LC" in text and "length-controlled* %" in text
    for html in ((report / "report.html").read_text(), (board / "leaderboard.html").read_text()):
        assert "<img src=x" not in html and "&lt;img src=x" in html and "not AlpacaEval&#x27;s LC" in html
