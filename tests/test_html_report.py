"""report.html in real headless Chromium: it renders, its own script runs, and model text runs nothing."""

import json
import re

from conftest import browse, server_run_config

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
