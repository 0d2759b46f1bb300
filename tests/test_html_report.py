"""report.html in real headless Chromium: it renders, its own script runs, model text runs nothing, and it shows
report.md's sections in report.md's order, with the same notes rendered as HTML."""

import html
import json
import os
import re
import shutil
from pathlib import Path

from conftest import browse, run_cli, server_run_config

from lima_eval.config import load_config
from lima_eval.pipeline import run
from lima_eval.testing.openai_server import OpenAITestServer

ATTACKS = {
    "mine": "<script>document.documentElement.setAttribute('data-pwned','script')</script> Fine answer.",
    "base": "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\"> short",
}
PROMPT_ATTACK = "Reply </textarea></pre><script>document.documentElement.setAttribute('data-pwned','prompt')</script>"


def responder(body):
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if "[Answer A]" in text:
        return "Verdict: A" if "Fine answer" in text.split("[Answer B]")[0] else "Verdict: B"
    return ATTACKS[body["model"]]


def test_report_html_renders_and_model_text_runs_nothing(tmp_path, chromium):
    prompts = tmp_path / "p.jsonl"
    rows = [{"id": "attack", "prompt": PROMPT_ATTACK, "category": "safety"}] + [
        {"id": f"q{i}", "prompt": f"Question {i}?", "category": "general"} for i in range(5)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with OpenAITestServer(responder=responder) as server:
        cfg = load_config(server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts)},
                                            name="xss", judge={"model": "judge", "order": "both"}))
        run(cfg, show_progress=False)
    page = cfg.run_dir / "report" / "report.html"
    html = page.read_text()
    assert html.count("<script") == 1  # only the page's own
    dom = browse(chromium, page, "--dump-dom").stdout
    assert 'data-ready="1"' in dom  # the page's own script ran (its hash is allowed by the CSP)
    assert "data-pwned" not in re.search(r"<html[^>]*>", dom).group(0)
    assert dom.count("<script") == 1 and '<img src="x"' not in dom
    # The attacks are shown as text.
    assert "&lt;script&gt;document.documentElement.setAttribute('data-pwned','script')&lt;/script&gt;" in dom
    assert "&lt;img src=x onerror=" in dom and "&lt;/textarea&gt;&lt;/pre&gt;&lt;script&gt;" in dom
    assert "6 of 6 prompts" in dom
    shot = tmp_path / "report.png"
    out = browse(chromium, page, f"--screenshot={shot}", "--window-size=1280,2200")
    assert shot.exists(), out.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 30_000  # a rendered page, not a blank one
    keep = __import__("os").environ.get("LIMA_EVAL_KEEP_SCREENSHOT")
    if keep:
        __import__("shutil").copy(shot, keep)


def _text(fragment: str) -> str:
    """An HTML fragment's text, as a reader sees it (tags dropped, entities read, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def _md_text(line: str) -> str:
    """A report.md line's text, as a reader sees it rendered (code spans' backticks and the escapes dropped)."""
    for a, b in (("\\|", "|"), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"), ("`", "")):
        line = line.replace(a, b)
    return " ".join(line.split())


def test_report_html_has_report_md_sections_in_order_and_its_notes_as_html(tmp_path, chromium):
    """report.html, as Chromium renders it, shows the sections of report.md in the same order, the line naming the
    models under test and the baselines, and the same notes, their code spans as <code> (no raw backticks)."""
    from test_report_sections import all_sections_config

    out = run_cli("run", str(all_sections_config(tmp_path)), "--no-progress", "--no-cache")
    assert out.returncode == 0, out.stderr
    report = tmp_path / "results" / "all" / "report"
    md = (report / "report.md").read_text()
    dom = browse(chromium, report / "report.html", "--dump-dom").stdout
    assert 'data-ready="1"' in dom
    md_sections = re.findall(r"^## (.+)$", md, re.MULTILINE)
    html_sections = [_text(h) for h in re.findall(r"<h2>(.*?)</h2>", dom, re.DOTALL)]
    assert html_sections[-1] == "Answers"  # the answer browser: report.html's own, after every section
    assert html_sections[:-1] == md_sections and len(md_sections) >= 11
    models_line = _md_text(re.search(r"^Benchmark .*$", md, re.MULTILINE).group(0).replace("**", ""))
    assert "Models under test: mine; baselines: base." in models_line
    assert models_line in _text(re.search(r"<p>Benchmark .*?</p>", dom, re.DOTALL).group(0))
    md_notes = re.search(r"^## Notes\n\n(.*?)\n\n", md, re.MULTILINE | re.DOTALL).group(1).splitlines()
    html_notes = re.findall(r"<li>(.*?)</li>", re.search(r"<h2>Notes</h2>\s*<ul>(.*?)</ul>", dom, re.DOTALL).group(1),
                            re.DOTALL)
    assert len(md_notes) == len(html_notes) >= 5
    for line, item in zip(md_notes, html_notes):
        assert _md_text(line.removeprefix("- ")) == _text(item)
        assert "`" not in item  # code spans are <code>, not raw backticks
    assert sum("<code>" in item for item in html_notes) >= 3
    text = _text(dom.split("<h2>Answers</h2>")[0])
    assert "`" not in text and "-%" not in text and "-%" not in md
    assert "judges/prices.yaml" in text and "judges/prices.yaml" in md
    shot = tmp_path / "sections.png"
    browse(chromium, report / "report.html", f"--screenshot={shot}", "--window-size=1280,3000")
    assert shot.exists() and shot.read_bytes()[:4] == b"\x89PNG"
    keep = os.environ.get("LIMA_EVAL_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, Path(keep).with_name("sections-" + Path(keep).name))
