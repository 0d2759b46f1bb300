"""The SFT stage inside `lima-eval run`, and checkpoint selection by a judge (tiny model, local judge server)."""

import json

from conftest import write_config

from lima_eval.config import load_config
from lima_eval.pipeline import run
from lima_eval.selection import select_checkpoint
from lima_eval.sft.recipe import SFTConfig
from lima_eval.sft.train import train
from lima_eval.store import RunStore

SFT = {"name": "tuned", "base": "embedded:tiny-random", "data": "demo", "max_examples": 8, "epochs": 1,
       "batch_size": 4, "micro_batch_size": 4, "max_seq_len": 64, "keep_epochs": []}


def test_sft_section_makes_the_model_under_test(tmp_path, prompts_file, judge_server):
    cfg_path = write_config(tmp_path / "c.yaml", {
        "name": "sftrun", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "sft": SFT,
        "models": [{"name": "base", "model": "embedded:tiny-random", "sampling": {"max_new_tokens": 6}},
                   {"name": "tuned", "model": "filled-in", "sampling": {"max_new_tokens": 6}}],
        "baselines": ["base"],
        "judge": {"backend": "openai", "model": "j", "base_url": judge_server.base_url},
    })
    cfg = load_config(cfg_path)
    tuned = cfg.model("tuned")
    assert tuned.model == str(tmp_path / "results" / "sftrun" / "sft" / "tuned") and tuned.revision
    result = run(cfg, show_progress=False)
    assert (result.generations.new, result.judgments.new) == (12, 12)  # 6 pairs, each judged in both orders
    resolved = RunStore(cfg.run_dir).read_config()
    assert resolved["sft"]["epochs"] == 1 and resolved["sft"]["adam_beta2"] == 0.95  # the recipe is recorded
    assert json.loads((tmp_path / "results/sftrun/sft/tuned/lima_sft.json").read_text())["steps"] == 2
    again = run(load_config(cfg_path), show_progress=False)
    assert again.calls == 0  # SFT complete, answers and verdicts on disk

    changed = load_config(cfg_path, ["sft.max_examples=4"])  # a new recipe is new work downstream
    assert changed.model("tuned").revision != tuned.revision


def test_checkpoint_selection_picks_the_judges_favourite(tmp_path, judge_server):
    cfg = SFTConfig(**{k: v for k, v in SFT.items() if k != "name"} | {"epochs": 3, "keep_epochs": [1, 2, 3],
                    "out": str(tmp_path / "o"), "dev_max_new_tokens": 8, "learning_rate": 1e-3})
    train(cfg, show_progress=False)
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps({"id": f"d{i}", "prompt": f"Dev question {i}?"}) + "\n" for i in range(4)))
    best = select_checkpoint(cfg, dev, "lima-pairwise",
                             ["backend=openai", "model=j", f"base_url={judge_server.base_url}"], show_progress=False)
    table = json.loads((tmp_path / "o" / "selection.json").read_text())
    rows = {r["epoch"]: r for r in table["rows"]}
    assert set(rows) == {1, 2, 3}
    assert all(r["n"] + r["errors"] == 8 for r in rows.values())  # 2 opponents x 4 prompts, round robin
    # The test judge prefers longer answers: recompute each epoch's score from the answers themselves.
    gens = RunStore(tmp_path / "o" / "selection").generations().values()
    length = {(g.model, g.prompt_id): len(g.text) for g in gens}
    score = {}
    for e in rows:
        results = []
        for other in rows:
            if other != e:
                for i in range(4):
                    a, b = length[(f"epoch-{e}", f"d{i}")], length[(f"epoch-{other}", f"d{i}")]
                    results.append(1.0 if a > b else 0.5 if a == b else 0.0)
        score[e] = sum(results) / len(results)
    assert {e: r["score"] for e, r in rows.items()} == {e: round(s, 4) for e, s in score.items()}
    expected = max(score, key=lambda e: (score[e], -e))
    assert table["best_epoch"] == expected and best.name == f"epoch-{expected}"
    assert "(best)" in (tmp_path / "o" / "checkpoint_selection.md").read_text()
