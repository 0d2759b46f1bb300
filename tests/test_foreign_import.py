"""import-judgments on the real files in ../shared/data (AlpacaEval, PandaLM) and on MT-bench's pairwise format."""

import csv
import json
from pathlib import Path

import pytest
from conftest import run_cli

from lima_eval.errors import InputError
from lima_eval.judging.foreign import import_judgments
from lima_eval.store import RunStore

LEADERBOARDS = {"alpaca_eval_gpt4": "data_AlpacaEval/alpaca_eval_gpt4_leaderboard.csv",
                "weighted_alpaca_eval_gpt4_turbo": "data_AlpacaEval_2/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"}


def annotation_files(root: Path) -> list[Path]:
    return sorted(root.glob("alpaca_eval/results/*/*/annotations.json"))


def test_alpaca_eval_annotations_match_the_published_leaderboards(shared_data, tmp_path):
    files = annotation_files(shared_data)
    assert len(files) == 14
    for path in files:
        annotator, model = path.parent.name, path.parent.parent.name
        board = {r[""]: r for r in csv.DictReader((shared_data / "alpaca_eval/leaderboards" /
                                                   LEADERBOARDS[annotator]).open())}
        run_dir = tmp_path / f"{model}-{annotator}"
        result = import_judgments(run_dir, path, "alpaca-eval")
        assert result.imported == 805
        judgments = list(RunStore(run_dir).imported().values())
        raw = [r["preference"] for r in json.loads(path.read_text())]
        assert [j.preference for j in judgments] == [float(p) if p is not None else None for p in raw]  # kept
        if model not in board:
            continue
        row = board[model]
        decided = [j for j in judgments if j.verdict is not None]
        assert sum(j.verdict == "b" for j in decided) == int(row["n_wins"])
        assert sum(j.verdict == "a" for j in decided) == int(row["n_wins_base"])
        assert sum(j.verdict == "tie" for j in decided) == int(row["n_draws"])
        win_rate = 100 * sum(j.score_b for j in decided) / len(decided)
        assert win_rate == pytest.approx(float(row["win_rate"]), abs=1e-4)


def test_alpaca_eval_cli_builds_a_report_and_a_second_import_adds_nothing(shared_data, tmp_path):
    path = shared_data / "alpaca_eval/results/claude-2/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    first = run_cli("import-judgments", str(tmp_path / "ae2"), str(path), "--format", "alpaca-eval")
    assert first.returncode == 0, first.stderr
    assert "imported 805 judgment(s)" in first.stderr
    summary = json.loads((tmp_path / "ae2/report/summary.json").read_text())
    row = summary["rows"][0]
    assert (row["model"], row["baseline"], row["judge"]) == (
        "claude-2", "gpt4_1106_preview", "alpaca-eval:weighted_alpaca_eval_gpt4_turbo")
    assert row["n"] == 805
    again = run_cli("import-judgments", str(tmp_path / "ae2"), str(path), "--format", "alpaca-eval")
    assert "imported 0 judgment(s)" in again.stderr and "805 already there" in again.stderr
    prompts = [json.loads(x) for x in (tmp_path / "ae2/prompts.jsonl").read_text().splitlines()]
    assert len(prompts) == 805 and prompts[0]["id"] == "0"  # the instructions, once, for the answer browser
    assert prompts[0]["prompt"] == json.loads(path.read_text())[0]["instruction"]


def test_pandalm_human_labels_and_judge_results_join_on_idx(shared_data, tmp_path):
    run_dir = tmp_path / "panda"
    humans = import_judgments(run_dir, shared_data / "pandalm/testset-v1.json", "pandalm")
    assert humans.imported == 3 * 999
    gpt = import_judgments(run_dir, shared_data / "pandalm/gpt-3.5-turbo-testset-v1.json", "pandalm")
    assert gpt.imported == 999 and gpt.unparsed == 25  # its "garbage" outputs stay errors
    records = list(RunStore(run_dir).imported().values())
    human = [j for j in records if j.judge == "human"]
    assert {j.annotator for j in human} == {"annotator1", "annotator2", "annotator3"}
    majority = {}
    for j in human:
        majority.setdefault(j.prompt_id, []).append(j.verdict)
    # PROVENANCE.md: the majority labels are 105 ties, 422 response1, 472 response2.
    counts = {"tie": 0, "a": 0, "b": 0}
    for votes in majority.values():
        counts[max(set(votes), key=votes.count)] += 1
    assert counts == {"tie": 105, "a": 422, "b": 472}
    pairs = {j.prompt_id: (j.model_a, j.model_b) for j in human}
    judged = [j for j in records if j.judge == "pandalm:gpt-3.5-turbo"]
    assert all((j.model_a, j.model_b) == pairs[j.prompt_id] for j in judged)  # model names from the test set


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mt_bench_pairwise_lines_become_two_judgments(shared_data, tmp_path):
    """The official gpt-4_pair.jsonl is not in ../shared (HF-only); lines in its format over the real question
    ids and model names stand in for it."""
    qids = [json.loads(x)["question_id"] for x in (shared_data / "mt_bench/question.jsonl").read_text().splitlines()]
    winners = [("model_1", "model_1"), ("model_1", "model_2"), ("tie", "tie"), ("error", "model_2")]
    rows = [{"question_id": q, "model_1": "vicuna-13b-v1.3", "model_2": "alpaca-13b", "g1_winner": g1,
             "g2_winner": g2, "judge": ["gpt-4", "pair-v2"], "g1_judgment": "[[A]]", "g2_judgment": "[[B]]",
             "turn": 1 + i % 2, "tstamp": 1687221890.0} for i, (q, (g1, g2)) in enumerate(zip(qids, winners))]
    run_dir = tmp_path / "mt"
    result = import_judgments(run_dir, write_jsonl(tmp_path / "gpt-4_pair.jsonl", rows), "mt-bench-pair")
    assert result.imported == 8 and result.unparsed == 1
    records = RunStore(run_dir).imported().values()
    got = sorted((j.prompt_id, j.turn, j.shown_first, j.verdict) for j in records)
    assert got == sorted([
        (str(qids[0]), 0, "a", "a"), (str(qids[0]), 0, "b", "a"),
        (str(qids[1]), 1, "a", "a"), (str(qids[1]), 1, "b", "b"),
        (str(qids[2]), 0, "a", "tie"), (str(qids[2]), 0, "b", "tie"),
        (str(qids[3]), 1, "a", None), (str(qids[3]), 1, "b", "b")])
    assert {j.judge for j in records} == {"mt-bench:gpt-4-pair-v2"}


@pytest.mark.parametrize("fmt,row,where", [
    ("alpaca-eval", {"instruction": "x", "generator_1": "a", "generator_2": "b", "annotator": "g",
                     "preference": 7}, "line 2, field 'preference'"),
    ("alpaca-eval", {"instruction": "x", "generator_1": "a", "annotator": "g", "preference": 1},
     "line 2, field 'generator_2'"),
    ("mt-bench-pair", {"question_id": 81, "model_1": "a", "model_2": "b", "g1_winner": "A", "g2_winner": "tie"},
     "line 2, field 'g1_winner'"),
    ("pandalm", {"idx": "3", "cmp_key": "x_y", "annotator1": "7"}, "line 2, field 'annotator1'"),
])
def test_bad_rows_are_named_and_nothing_is_written(tmp_path, fmt, row, where):
    good = {"alpaca-eval": {"instruction": "y", "generator_1": "a", "generator_2": "b", "annotator": "g",
                            "preference": 2},
            "mt-bench-pair": {"question_id": 82, "model_1": "a", "model_2": "b", "g1_winner": "tie",
                              "g2_winner": "tie"},
            "pandalm": {"idx": "1", "cmp_key": "x_y", "annotator1": "1"}}[fmt]
    suffix = ".json" if fmt != "mt-bench-pair" else ".jsonl"
    path = tmp_path / f"in{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps([good, row]))
    else:
        write_jsonl(path, [good, row])
    with pytest.raises(InputError) as err:
        import_judgments(tmp_path / "run", path, fmt)
    assert f"{path}, {where}" in str(err.value)
    assert not (tmp_path / "run" / "imported_judgments.jsonl").exists()
    out = run_cli("import-judgments", str(tmp_path / "run"), str(path), "--format", fmt)
    assert out.returncode == 1 and where in out.stderr and len(out.stderr.strip().splitlines()) == 1


def alpaca_rows(instructions, pref=2.0, g2="mine"):
    return [{"instruction": t, "output_1": "a", "generator_1": "base", "output_2": "b", "generator_2": g2,
             "annotator": "judge", "preference": pref} for t in instructions]


def test_alpaca_rows_are_matched_by_their_text_not_their_position(tmp_path):
    """A trailing space, or a second file in another row order, still files every row under its prompt; rows of
    a real run whose instruction is none of its prompts are reported, not misfiled under a row number."""
    run_dir = tmp_path / "ae"
    first = tmp_path / "first.json"
    first.write_text(json.dumps(alpaca_rows(["What is up?", "Name a fruit."])))
    import_judgments(run_dir, first, "alpaca-eval")
    second = tmp_path / "second.json"  # another judge's file: rows reversed, one with a trailing space
    second.write_text(json.dumps([r | {"annotator": "other"} for r in alpaca_rows(["Name a fruit. ", "What is up?"])]))
    import_judgments(run_dir, second, "alpaca-eval")
    records = list(RunStore(run_dir).imported().values())
    prompts = {json.loads(x)["id"]: json.loads(x)["prompt"]
               for x in (run_dir / "prompts.jsonl").read_text().splitlines()}
    assert len(prompts) == 2
    by_judge = {(j.judge, prompts[j.prompt_id].strip()) for j in records}
    assert by_judge == {(f"alpaca-eval:{a}", t) for a in ("judge", "other") for t in ("What is up?", "Name a fruit.")}


def test_repeated_rows_are_counted_once_and_reported(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(alpaca_rows(["Q1", "Q2", "Q1"])))
    result = import_judgments(tmp_path / "run", path, "alpaca-eval")
    assert result.imported == 2 and result.duplicates == 1


def test_alpaca_rows_of_a_real_run_that_match_no_prompt_are_reported(tmp_path, prompts_file):
    from conftest import run_cli, write_config

    config = write_config(tmp_path / "c.yaml", {
        "name": "real", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"], "judge": {"backend": "scripted", "model": "fixed:Verdict: A"}})
    assert run_cli("run", str(config), "--no-progress").returncode in (0, 1)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(alpaca_rows(["Name a colour.  ", "Not a prompt of this run"])))
    proc = run_cli("import-judgments", str(tmp_path / "results/real"), str(path), "--format", "alpaca-eval")
    assert proc.returncode == 0, proc.stderr
    assert "1 row(s) not imported: their instruction is none of the run's prompts (line 2)" in proc.stderr
    (record,) = RunStore(tmp_path / "results/real").imported().values()
    assert record.prompt_id == "p1"  # "Name a colour." with its whitespace normalised


def test_pandalm_ids_hold_the_models(tmp_path):
    """The same idx compared by two model pairs is two items (ids include the models)."""
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"idx": 1, "cmp_key": "m1_m2", "annotator1": "1"},
                                {"idx": 1, "cmp_key": "m3_m4", "annotator1": "2"}]))
    result = import_judgments(tmp_path / "run", path, "pandalm")
    assert result.imported == 2
    assert {(j.model_a, j.model_b, j.verdict) for j in RunStore(tmp_path / "run").imported().values()} == {
        ("m1", "m2", "a"), ("m3", "m4", "b")}


def test_mt_bench_pairs_count_once_with_fastchats_rule_and_the_judge_gets_a_card(tmp_path):
    """g1/g2 of one line are one pair: the orders must agree, else a tie (as lima-eval's own order: both), and the
    report gives the imported judge's position consistency."""
    rows = [{"question_id": q, "model_1": "x", "model_2": "y", "g1_winner": g1, "g2_winner": g2, "judge": "gpt-4"}
            for q, (g1, g2) in enumerate([("model_1", "model_1"), ("model_1", "model_2"), ("model_2", "model_2"),
                                          ("tie", "tie")], start=81)]
    proc = run_cli("import-judgments", str(tmp_path / "mt"), str(write_jsonl(tmp_path / "p.jsonl", rows)),
                   "--format", "mt-bench-pair")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "mt/report/summary.json").read_text())
    (r,) = summary["rows"]
    # x vs y (x is model_a): x wins 81, 82 disagrees -> tie, 83 y wins, 84 tie.
    assert r["n"] == 4 and r["tie"] == 2 and r["win"] + r["loss"] == 2
    (card,) = summary["judges"]
    assert card["judge"] == "mt-bench:gpt-4" and card["pairs_both_orders"] == 4
    assert card["position_consistency"] == 0.75  # 3 of the 4 pairs agree across orders
