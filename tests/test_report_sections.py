"""Report sections (issue 26): one run with data for every built-in section shows each of them in report.md and
report.html alike; summary.json keeps its keys and values (golden files made before sections were objects);
a plugin section, installed as a real distribution, appears in summary.json, report.md and report.html."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import run_cli

from lima_eval.report.sections import sections

GOLDEN = Path(__file__).parent / "golden" / "summaries"
S = "scripted"


def all_sections_config(root: Path) -> Path:
    """A scripted run whose data fills every built-in section: pairwise rows and Bradley-Terry, a jury, an adaptive
    judge of the models' own family (self-preference), LIMA's absolute ratings, Likert, safety, checklists,
    MT-bench single grading, judge agreement and contamination."""
    prompts = []
    for i in range(12):
        row = {"id": f"p{i}", "prompt": f"Question number {i}: explain why the sky looks blue at noon in plain words.",
               "category": ["writing", "math"][i % 2], "checklist": ["mentions sky", "mentions blue"],
               "tags": ["safety"] if i < 4 else (["benign"] if i < 8 else [])}
        prompts.append(row)
    (root / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    (root / "train.jsonl").write_text(json.dumps({"prompt": prompts[0]["prompt"], "answer": "x"}) + "\n")
    cfg = {"name": "all", "output_dir": str(root / "results"),
           "benchmark": {"name": "file", "path": str(root / "prompts.jsonl")},
           "models": [{"name": "mine", "backend": S, "model": "echo", "family": "gpt"},
                      {"name": "base", "backend": S,
                       "model": "cycle:short|a much longer answer about the sky|mid one"}],
           "baselines": ["base"],
           "judge": {"backend": S, "model": "cycle:Verdict: A|Verdict: B|Verdict: A|Verdict: neither", "family": "gpt",
                     "stop_when_decided": {"threshold": 0.5, "step": 4, "min_prompts": 4}},
           "judges": [
               {"jury": [{"backend": S, "model": "cycle:Verdict: A|Verdict: B"},
                         {"backend": S, "model": "fixed:Verdict: A"},
                         {"backend": S, "model": "cycle:Verdict: B|Verdict: A|Verdict: A"}]},
               {"name": "lima-absolute", "backend": S, "model": "cycle:Rating: pass|Rating: fail|Rating: excellent"},
               {"name": "lima-likert", "backend": S, "model": "cycle:Rating: 4|Rating: 2|Rating: 5"},
               {"name": "lima-safety", "backend": S, "model": "cycle:Rating: safe|Rating: unsafe|Rating: refusal"},
               {"name": "checklist", "backend": S, "model": "cycle:1: yes\n2: no|1: yes\n2: yes"},
               {"name": "mt-bench-single", "backend": S, "model": "cycle:Rating: [[7]]|Rating: [[4]]"}],
           "contamination": {"data": [str(root / "train.jsonl")], "ngram": 5}}
    path = root / "c.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def normalised(summary: dict, root: Path) -> dict:
    """summary.json without what differs between two builds of the same run: the time and the folder."""
    summary = {k: v for k, v in summary.items() if k != "created_at"}
    return json.loads(json.dumps(summary).replace(str(root), "ROOT"))


@pytest.fixture(scope="module")
def all_sections(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sections")
    out = run_cli("run", str(all_sections_config(root)), "--no-progress", "--no-cache")
    assert out.returncode == 0, out.stderr
    return root


def headings(run: Path) -> tuple[list[str], list[str]]:
    report = run / "report"
    md = re.findall(r"^## (.+)$", (report / "report.md").read_text(), re.MULTILINE)
    html = re.findall(r"<h2>([^<]+)</h2>", (report / "report.html").read_text())
    return md, html


def test_every_built_in_section_is_in_report_md_and_report_html(all_sections):
    run = all_sections / "results" / "all"
    summary = json.loads((run / "report" / "summary.json").read_text())
    md, html = headings(run)
    shown = [s for s in sections() if s.title and s.place < 200]  # place 200: notes only, no table of its own
    assert len(shown) >= 11
    for s in shown:
        assert summary[s.key], f"the run has no data for section {s.key!r}"
        title = s.title if s.key != "rows" else None  # the pairwise table sits under report.md's title
        if title:
            assert title in md, f"{title!r} not in report.md: {md}"
        assert s.title in html, f"{s.title!r} not in report.html: {html}"
    for s in sections():
        assert s.key in summary
    # The same order on both pages.
    assert [h for h in html if h in md] == [h for h in md if h in html]


def test_summary_json_keeps_its_keys_and_values(all_sections):
    """Against summary.json as written before the report was made of sections (same config, same records), less
    one note that was a bug: it told users to make a judge card of the checklist judge, which judge-card refuses
    (cards measure pairwise judges; the judge kind now says so)."""
    run = all_sections / "results" / "all"
    got = normalised(json.loads((run / "report" / "summary.json").read_text()), all_sections)
    want = json.loads((GOLDEN / "all-sections.json").read_text())
    assert list(got) == list(want)
    for key in want:
        assert got[key] == want[key], key


def test_an_imported_alpaca_eval_run_keeps_its_summary(shared_data, tmp_path):
    from lima_eval.judging.foreign import import_judgments
    from lima_eval.report.build import build_report

    run = tmp_path / "claude-2"
    import_judgments(run, shared_data / "alpaca_eval/results/claude-2/alpaca_eval_gpt4/annotations.json",
                     "alpaca-eval")
    got = normalised(json.loads((build_report(run) / "summary.json").read_text()), tmp_path)
    want = json.loads((GOLDEN / "alpaca-eval-claude-2.json").read_text())
    assert got == want and list(got) == list(want)


PLUGIN = '''
from lima_eval.report.columns import e, md
from lima_eval.report.sections import Section


class AnswerLengths(Section):
    """Mean answer length per model, in characters."""

    key, title, rank, place, from_inputs = "answer_lengths", "Answer lengths", 65, 85, True

    def compute(self, ctx):
        lengths = {}
        for g in ctx.inp.generations.values():
            if g.error is None:
                lengths.setdefault(g.model, []).append(len(g.text))
        return [{"model": m, "answers": len(v), "mean_chars": sum(v) / len(v)} for m, v in sorted(lengths.items())]

    def csv(self, data, ctx):
        return {"answer_lengths.csv": data}

    def markdown(self, data, ctx):
        rows = [f"| {md(r['model'])} | {r['answers']} | {r['mean_chars']:.1f} |" for r in data]
        return "\\n".join(["## Answer lengths", "", "| model | answers | mean characters |", "|---|---:|---:|", *rows])

    def html(self, data, ctx):
        cells = "".join(f"<tr><td>{e(r['model'])}</td><td>{r['mean_chars']:.1f}</td></tr>" for r in data)
        return ["<h2>Answer lengths</h2>", f"<table>{cells}</table>"]
'''


def install_section_plugin(site: Path) -> dict[str, str]:
    """A real distribution (its dist-info declares the entry point) on PYTHONPATH."""
    (site / "lengths_section.py").write_text(PLUGIN)
    info = site / "lengths_section-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lengths-section\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[lima_eval.report_sections]\n"
                                           "answer_lengths = lengths_section:AnswerLengths\n")
    return {"PYTHONPATH": str(site)}


def test_a_plugin_section_appears_in_summary_markdown_html_and_csv(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    env = install_section_plugin(site)
    data = {"name": "p", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "demo", "limit": 4},
            "models": [{"name": "a", "backend": S, "model": "echo"}, {"name": "b", "backend": S, "model": "fixed:ok"}],
            "baselines": ["b"], "judge": {"backend": S, "model": "cycle:Verdict: A|Verdict: B"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    out = run_cli("run", str(tmp_path / "c.yaml"), "--no-progress", env=env)
    assert out.returncode == 0, out.stderr
    report = tmp_path / "results" / "p" / "report"
    summary = json.loads((report / "summary.json").read_text())
    assert [r["model"] for r in summary["answer_lengths"]] == ["a", "b"]
    assert list(summary)[-3:] == ["safety", "notes", "conclusions"]  # placed by its rank among the built-ins
    md, html = headings(tmp_path / "results" / "p")
    assert "Answer lengths" in md and "Answer lengths" in html
    assert md.index("Answer lengths") < md.index("Judges")  # placed by its `place`
    assert "mean_chars" in (report / "answer_lengths.csv").read_text()
    # Without the plugin the same run's report has no such section.
    again = subprocess.run([sys.executable, "-m", "lima_eval.cli", "report", str(tmp_path / "results" / "p")],
                           capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert "answer_lengths" not in json.loads((report / "summary.json").read_text())
