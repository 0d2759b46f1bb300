"""A report of a large run stays readable and quick (issue 28): records are read by whole-file parsing in chunks
into their parsed dicts, the answer browser lists a bounded number of verdicts and the win / tie / loss figure a
bounded number of bars, each saying so."""

from __future__ import annotations

import json

from lima_eval.records import Generation, Judgment, Prompt
from lima_eval.report.html import MAX_BROWSER_VERDICTS, _browser
from lima_eval.report.plots import MAX_WINRATE_BARS, winrate_axes
from lima_eval.report.summary import Inputs
from lima_eval.store import RunStore, read_jsonl


def judgment(k: int, prompt: str, a: str, b: str, verdict: str = "a", raw: str = "") -> Judgment:
    return Judgment(id=f"j{k}", prompt_id=prompt, model_a=a, model_b=b, judge="j", verdict=verdict,  # type: ignore[arg-type]
                    generation_a=f"{prompt}-{a}", generation_b=f"{prompt}-{b}", shown_first="a", raw=raw)


def test_records_of_a_file_of_several_chunks_with_a_blank_line_are_read_as_written(tmp_path):
    """Over 4 MB (several parse chunks), a blank line in the middle and a record of an older version (fields left
    out): every record is read, the same as json.loads line by line, and the latest per id wins."""
    store = RunStore(tmp_path)
    written = [judgment(k, f"p{k % 7}", "m", "base", "ab"[k % 2], raw="reply " * 60) for k in range(12_000)]
    store.append_imported(written)
    path = tmp_path / "imported_judgments.jsonl"
    text = path.read_text(encoding="utf-8")
    old = {"id": "old", "prompt_id": "p0", "model_a": "m", "model_b": "base", "judge": "j", "verdict": "tie"}
    middle = text.index("\n", len(text) // 2) + 1
    path.write_text(text[:middle] + "\n" + json.dumps(old) + "\n" + text[middle:], encoding="utf-8")
    assert path.stat().st_size > 4 << 20
    read = store.imported()
    assert len(read) == len(written) + 1 and read["old"].verdict == "tie" and read["old"].usage == {}
    assert all(read[j.id] == j for j in written)
    assert list(read_jsonl(path)) == [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]


def test_the_answer_browser_lists_at_most_its_verdicts_and_says_so():
    """A round robin with 200 verdicts per prompt: the browser shows the first prompts whose verdicts fit (100 of
    120), and a note says why and where every judgment is; the pair filter still lists every pair."""
    prompts = [Prompt(id=f"p{i}", text=f"prompt {i}") for i in range(120)]
    models = [f"m{i:02d}" for i in range(21)]
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]][:200]
    judgments = [judgment(k, p.id, a, b) for k, (p, (a, b)) in enumerate((p, ab) for p in prompts for ab in pairs)]
    gens = {f"{p.id}-{m}": Generation(id=f"{p.id}-{m}", prompt_id=p.id, model=m, text="answer") for p in prompts
            for m in models}
    inp = Inputs(judgments=judgments, ratings=[], generations=gens, pairs=pairs, baselines=[])
    page, listed = _browser(inp, prompts)
    shown = MAX_BROWSER_VERDICTS // len(pairs)
    assert page.count('<section class="item"') == shown == 100
    assert f"The first {shown} of 120 prompts are shown (the page lists at most 20,000 verdicts" in page
    assert "JSONL" in page and len(listed) == len(pairs)


def test_a_small_browser_is_unchanged():
    """Few verdicts: every prompt, no note."""
    prompts = [Prompt(id=f"p{i}", text=f"prompt {i}") for i in range(3)]
    judgments = [judgment(i, p.id, "m", "base") for i, p in enumerate(prompts)]
    inp = Inputs(judgments=judgments, ratings=[], generations={}, pairs=[("m", "base")], baselines=["base"])
    page, _ = _browser(inp, prompts)
    assert page.count('<section class="item"') == 3 and "are shown" not in page


def test_the_win_tie_loss_figure_draws_its_first_bars_and_says_so():
    """50 (model, baseline) pairs: the figure has MAX_WINRATE_BARS bars, the first rows in order, and a title that
    says how many of how many it shows and where the rest are; 10 pairs have no such title."""
    def rows(n: int) -> list[dict]:
        return [{"judge": "j", "model": f"m{i}", "baseline": "base", "n": 10, "errors": 0, "win": 5, "tie": 2,
                 "loss": 3, "win_pct": 50.0, "tie_pct": 20.0, "loss_pct": 30.0} for i in range(n)]

    fig = winrate_axes(rows(50))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == MAX_WINRATE_BARS == 40 and labels[0] == "m0\nvs base" and labels[-1] == "m39\nvs base"
    assert fig._suptitle is not None
    assert "The first 40 of 50 model / baseline pairs" in fig._suptitle.get_text()
    small = winrate_axes(rows(10))
    assert len(small.axes[0].get_yticklabels()) == 10 and small._suptitle is None
