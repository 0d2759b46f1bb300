"""The whole pipeline: real hf generation on the tiny random model, a judge behind a real local HTTP server."""

import json
import shutil

import pytest
from conftest import run_cli, write_config

from lima_eval.config import load_config
from lima_eval.pipeline import run
from lima_eval.store import RunStore


@pytest.fixture
def config(tmp_path, prompts_file, judge_server):
    data = {
        "name": "tiny",
        "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [
            {"name": "mine", "backend": "hf", "model": "embedded:tiny-random", "batch_size": 4,
             "sampling": {"max_new_tokens": 12}},
            {"name": "base", "backend": "hf", "model": "embedded:tiny-random", "batch_size": 4,
             "sampling": {"temperature": 0, "max_new_tokens": 6}},
        ],
        "baselines": ["base"],
        "judge": {"name": "lima-pairwise", "backend": "openai", "model": "judge-model",
                  "base_url": judge_server.base_url, "concurrency": 2},
    }
    return write_config(tmp_path / "tiny.yaml", data)


def expected_tally(store: RunStore) -> dict[str, int]:
    """What the test judge (longer answer wins) must produce, computed from the answers on disk."""
    gens = {(g.prompt_id, g.model): g.text for g in store.generations().values()}
    out = {"win": 0, "tie": 0, "loss": 0}
    for pid in {p for p, _ in gens}:
        if pid == "p4":  # the judge gives no verdict there
            continue
        mine, base = len(gens[(pid, "mine")]), len(gens[(pid, "base")])
        out["tie" if mine == base else "win" if mine > base else "loss"] += 1
    return out


def test_pipeline_end_to_end_then_rerun_makes_no_calls(config, judge_server):
    cfg = load_config(config)
    result = run(cfg, show_progress=False)
    assert (result.generations.new, result.generations.errors) == (12, 0)
    # The default judge order is both: 6 pairs, each judged twice; p4's reply is unreadable in both orders.
    assert (result.judgments.new, result.judgments.errors) == (12, 2)
    assert judge_server.requests == 12

    store = RunStore(cfg.run_dir)
    gens = store.generations().values()
    assert {g.model for g in gens} == {"mine", "base"}
    assert all(g.sampling["repetition_penalty_scope"] == "prompt+generated" for g in gens)
    assert {g.sampling["temperature"] for g in gens} == {0.7, 0.0}
    judgments = list(store.judgments().values())
    assert {j.shown_first for j in judgments} == {"a", "b"}  # both orders occur; verdicts are un-swapped
    bad = [j for j in judgments if j.error]
    assert len(bad) == 2 and {j.prompt_id for j in bad} == {"p4"} and {j.shown_first for j in bad} == {"a", "b"}
    assert all(j.verdict is None and j.error_kind == "parse" for j in bad)

    summary = json.loads((result.report_dir / "summary.json").read_text())
    (row,) = summary["rows"]
    assert (row["model"], row["baseline"], row["judge"]) == ("mine", "base", "lima-pairwise:judge-model")
    assert {k: row[k] for k in ("win", "tie", "loss")} == expected_tally(store)
    assert row["n"] == 5 and row["errors"] == 1  # both orders of a pair count once (combine: tie)
    for name in ("summary.csv", "report.md", "win_tie_loss.png"):
        assert (result.report_dir / name).stat().st_size > 0
    assert "1 judgment(s) have no readable verdict" in (result.report_dir / "report.md").read_text()

    again = run(load_config(config), show_progress=False)
    assert again.calls == 0 and (again.generations.cached, again.judgments.cached) == (12, 12)
    assert judge_server.requests == 12

    shutil.rmtree(result.report_dir)
    proc = run_cli("report", str(cfg.run_dir))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((result.report_dir / "summary.json").read_text())["rows"] == summary["rows"]


def test_a_rerun_with_nothing_new_keeps_the_report_and_new_labels_rebuild_it(config, judge_server, tmp_path):
    cfg = load_config(config)
    first = run(cfg, show_progress=False)
    written = {p.name: p.stat().st_mtime_ns for p in first.report_dir.iterdir()}
    run(load_config(config), show_progress=False)  # nothing new: the report is not rebuilt
    assert {p.name: p.stat().st_mtime_ns for p in first.report_dir.iterdir()} == written
    labels = tmp_path / "labels.csv"
    labels.write_text("prompt_id,model_a,model_b,label,annotator\np1,mine,base,a,ann\n")
    assert run_cli("import-human", str(cfg.run_dir), str(labels)).returncode == 0
    run(load_config(config), show_progress=False)  # new input: rebuilt, and the labels are in it
    summary = json.loads((first.report_dir / "summary.json").read_text())
    assert any(r["judge"] == "human" for r in summary["rows"])
    run(load_config(config, ["benchmark.limit=3"]), show_progress=False)  # another config: rebuilt
    assert json.loads((first.report_dir / "summary.json").read_text())["n_prompts"] == 3


def test_changed_sampling_makes_new_work_and_the_report_uses_only_it(config, judge_server):
    run(load_config(config), show_progress=False)
    changed = load_config(config, ["models.mine.sampling.max_new_tokens=4"])
    result = run(changed, show_progress=False)
    assert (result.generations.new, result.generations.cached) == (6, 6)
    assert result.judgments.new == 12  # 6 pairs in both orders
    row = json.loads((result.report_dir / "summary.json").read_text())["rows"][0]
    assert row["n"] + row["errors"] == 6  # not 12: the old judgments belong to the old config


def test_cli_run_prints_counts_and_a_second_run_says_nothing_to_do(config, judge_server):
    first = run_cli("run", str(config), "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "generations: 12 new, 0 already on disk" in first.stderr
    assert first.stdout.strip().endswith("report.md")
    second = run_cli("run", str(config))
    assert second.returncode == 0
    assert "generations: 0 new, 12 already on disk" in second.stderr
    assert "0 new model or judge calls" in second.stderr
    assert judge_server.requests == 12
