"""`lima-eval leaderboard` on runs made by imports: each section names the benchmark the labels came from, an n/a
reason is a note under the table, and the figure shows its row labels whole."""

import csv
import json

import matplotlib.image
import numpy as np
from conftest import run_cli

from lima_eval.judging.foreign import import_judgments
from lima_eval.report.leaderboard import LC_DIFFICULTY, LC_DIFFICULTY_NOTE, collect


def alpaca_run(root, model, prefs):
    rows = [{"instruction": f"Instruction {i}", "output_1": "b" * 50, "generator_1": "gpt4_1106_preview",
             "output_2": "m" * (20 + i), "generator_2": model, "annotator": "ann", "preference": p}
            for i, p in enumerate(prefs)]
    path = root / f"{model}.json"
    path.write_text(json.dumps(rows))
    import_judgments(root / "results" / model, path, "alpaca-eval")


def test_sections_name_the_benchmark_notes_hold_the_reasons_and_labels_are_whole(tmp_path):
    alpaca_run(tmp_path, "gpt-3.5-turbo-0301", [2.0, 1.0, 1.5, 2.0])
    alpaca_run(tmp_path, "gpt-short", [1.0])  # one prompt: its interval is n/a
    rows = [{"question_id": q, "model_1": "ckpt", "model_2": "base", "g1_winner": "model_1", "g2_winner": "tie",
             "judge": ["gpt-4", "pair-v2"], "turn": 1} for q in range(1, 5)]
    (tmp_path / "mt.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_judgments(tmp_path / "results" / "mt", tmp_path / "mt.jsonl", "mt-bench-pair")
    out = run_cli("leaderboard", str(tmp_path / "results"))
    assert out.returncode == 0, out.stderr
    board = tmp_path / "results" / "leaderboard"
    md = (board / "leaderboard.md").read_text()
    assert "## alpaca-eval:ann on alpaca-eval (imported)" in md
    assert "## mt-bench:gpt-4-pair-v2 on mt-bench (imported)" in md
    assert " on imported" not in md
    # The reason is a numbered note under the table; the cell says only which.
    section = md.split("## alpaca-eval:ann")[1].split("\n## ")[0]
    notes = dict(reversed(line.rstrip().split(": ", 1)) for line in section.splitlines() if line.startswith("note "))
    one = notes["one prompt (an interval needs two)"]
    short = next(line for line in section.splitlines() if "| gpt-short |" in line)
    assert f"| 0.0 [n/a: {one}] |" in short and "interval needs two" not in short
    assert all(len(line) < 300 for line in section.splitlines() if line.startswith("|"))
    html = (board / "leaderboard.html").read_text()
    assert f"n/a: {one}]" in html and f'<p class="note">{one}: one prompt (an interval needs two)</p>' in html
    # Long labels keep their first letter: the image's left edge is background, not part of a glyph.
    for png in board.glob("leaderboard_*.png"):
        pixels = matplotlib.image.imread(png)
        assert np.all(pixels[:, :3, :3] > 0.95), png.name


AE2 = ("alpaca-7b", "claude-2", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-1106", "vicuna-13b", "falcon-7b-instruct",
       "gpt4_gamed")
# Sets of four, each with models whose difficulty LC reads furthest from the published one.
FOURS = (("alpaca-7b", "claude-2", "gpt-3.5-turbo-0301", "vicuna-13b"),
         ("alpaca-7b", "gpt-3.5-turbo-0301", "gpt4_gamed", "vicuna-13b"),
         ("falcon-7b-instruct", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-1106", "gpt4_gamed"),
         ("alpaca-7b", "falcon-7b-instruct", "gpt-3.5-turbo-0301", "vicuna-13b"))


def test_the_difficulty_lc_note_says_what_the_published_leaderboard_shows(shared_data, tmp_path):
    """The note next to the table: on AlpacaEval 2's annotation files the instruction-difficulty LC reads from
    1 point lower to 6 higher than AlpacaEval's published LC, and ranks the models as it does."""
    board = {r[""]: float(r["length_controlled_winrate"]) for r in csv.DictReader(
        (shared_data / "alpaca_eval/leaderboards/data_AlpacaEval_2/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv")
        .open())}
    runs = tmp_path / "runs"
    for model in AE2:
        import_judgments(runs / model, shared_data / f"alpaca_eval/results/{model}/weighted_alpaca_eval_gpt4_turbo/"
                         "annotations.json", "alpaca-eval")
    differences = []
    for models in (AE2, *FOURS):
        root = tmp_path / "-".join(models)
        root.mkdir()
        for m in models:
            (root / m).symlink_to(runs / m)
        ours = {r["model"]: 100 * r[LC_DIFFICULTY] for r in collect(root)}
        assert sorted(models, key=ours.__getitem__) == sorted(models, key=board.__getitem__), models
        differences += [ours[m] - board[m] for m in models]
    assert -1.5 < min(differences) < 0 and 5 < max(differences) < 6.5, differences
    out = run_cli("leaderboard", str(tmp_path / "-".join(AE2)))
    assert out.returncode == 0, out.stderr
    md = (tmp_path / "-".join(AE2) / "leaderboard" / "leaderboard.md").read_text()
    after_table = md[md.index("| 7 |"):]
    assert LC_DIFFICULTY_NOTE in after_table and "\n## " not in after_table  # under the table, in its section
    assert "from 1 point lower to 6 points higher" in LC_DIFFICULTY_NOTE and "ranking matched" in LC_DIFFICULTY_NOTE
