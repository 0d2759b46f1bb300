"""report.html: one self-contained page (figures embedded) with the tables and an answer browser.

Model answers, prompts and judge replies are untrusted text. Every one of them goes through html.escape, so
markup in an answer shows as text; and the page's Content-Security-Policy allows only its own script (by
hash) and data: images, so even a mistake in escaping could not run injected code.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from itertools import compress
from operator import attrgetter
from pathlib import Path
from typing import Any

from lima_eval.config import RunConfig
from lima_eval.records import Judgment, Prompt
from lima_eval.report.columns import LC_CAVEAT, e
from lima_eval.report.summary import Inputs
from lima_eval.store import write_atomic

MAX_BROWSER_PROMPTS = 2000
# ... and no more prompts than keep the verdicts listed under them within this many: a round robin of 20 models
# has 190 verdicts per prompt, and 2,000 of its prompts made a page of 380,000 verdicts (most of a
# million-judgment report's HTML time, and a page no browser opens comfortably). Every verdict is in the run's
# JSONL files.
MAX_BROWSER_VERDICTS = 20_000
# Said under every table with the pairwise columns (report and leaderboard, Markdown and HTML).
INTERVALS = ("Intervals: 95%, over prompts, their coverage tested by simulation (methods in docs/report.md). "
             "n/a: the data cannot support the figure, for the reason given. " + LC_CAVEAT)

SCRIPT = """
(function () {
  var q = document.getElementById('q'), pair = document.getElementById('pair');
  var items = Array.prototype.slice.call(document.querySelectorAll('section.item'));
  var shown = document.getElementById('shown');
  function update() {
    var text = q.value.toLowerCase(), want = pair.value, n = 0;
    items.forEach(function (el) {
      var ok = (!text || el.textContent.toLowerCase().indexOf(text) >= 0) &&
               (!want || (' ' + el.getAttribute('data-models') + ' ').indexOf(' ' + want + ' ') >= 0);
      el.hidden = !ok; if (ok) { n += 1; }
    });
    shown.textContent = n + ' of ' + items.length + ' prompts';
  }
  q.addEventListener('input', update); pair.addEventListener('change', update); update();
  document.body.setAttribute('data-ready', '1');
})();
"""

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;
color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;
text-align:right;vertical-align:top}th{background:#f4f4f4}td:first-child,th:first-child,td.l{text-align:left}
img{max-width:100%}.note{color:#555}.item{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:10px 0}
.answers{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:10px}
pre{white-space:pre-wrap;word-wrap:break-word;background:#fafafa;border:1px solid #eee;padding:6px;margin:4px 0;
font:12.5px/1.4 ui-monospace,Menlo,monospace;max-height:360px;overflow:auto}
.v-win{color:#2f7d4f;font-weight:600}.v-loss{color:#b23b28;font-weight:600}.v-tie{color:#777;font-weight:600}
.v-err{color:#a0a;font-weight:600}.mark{color:#8a5a00;background:#fff4d6;font-size:12px;padding:0 4px}
code{font:12.5px ui-monospace,Menlo,monospace;background:#f4f4f4;padding:0 3px;border-radius:3px}
.controls{position:sticky;top:0;background:#fff;padding:6px 0;z-index:1}
input,select{font-size:14px;padding:3px 6px}pre.reply{background:#f6f8fb;color:#444;font-size:12px;max-height:120px}
"""


def under_test(cfg: RunConfig) -> tuple[list[str], list[str]]:
    """The run's models under test and its baselines, in config order (the first line of both pages)."""
    return list(dict.fromkeys(m for m, _ in cfg.pairs())), list(cfg.baselines)


# An answer that begins in the middle of a word or sentence: a lowercase letter or a continuing mark first.
MID_WORD = re.compile(r"^\s*(?:[a-z]|['\u2019][a-z]|[,;:.)\]]\s*\w)")
MID_WORD_MARK = "begins mid-word: too few SFT steps to learn the chat format (see Notes)"


def begins_mid_word(text: str) -> bool:
    """Whether an answer starts inside a word or sentence (what a model that never learnt the chat format does)."""
    return bool(MID_WORD.match(text))


def rating_ci(r: dict) -> tuple[str, str]:
    """A Bradley-Terry row's (rating, 'low - high'), or n/a with the reason."""
    if r.get("rating") is None:
        return "n/a", f"n/a ({r.get('rating_na') or 'no estimate'})"
    if r.get("rating_ci_low") is None:
        return f"{r['rating']:.0f}", f"n/a ({r.get('rating_na') or 'no interval'})"
    return f"{r['rating']:.0f}", f"{r['rating_ci_low']:.0f} - {r['rating_ci_high']:.0f}"


def mean_ci(r: dict) -> str:
    """A ratings row's 'mean [low, high]', or n/a with the reason."""
    if r.get("mean_score") is None:
        return f"n/a ({r['mean_score_na']})" if r.get("mean_score_na") else "-"
    if r.get("mean_score_ci_low") is None:
        return f"{r['mean_score']:.2f} [n/a: {r.get('mean_score_na')}]"
    return f"{r['mean_score']:.2f} [{r['mean_score_ci_low']:.2f}, {r['mean_score_ci_high']:.2f}]"


def human_kappa(card: dict[str, Any]) -> str:
    """A judge's Cohen's kappa with the human majority on its card's gold set, and the human ceiling ('no card')."""
    hc = card.get("human_card")
    if not hc or hc.get("kappa") is None:
        return "no card" if "human_card" in card else "-"
    ceiling = hc.get("ceiling_kappa")
    return f"{hc['kappa']:.2f} [{'-' if ceiling is None else f'{ceiling:.2f}'}] ({hc['gold']})"


def figure_rows(rows: list[dict], key: str) -> list[dict]:
    """Rows for a figure: where a value has no interval (n/a: one prompt), its bounds are the value itself, so
    the figure draws the point without an error bar (the tables say n/a and why)."""
    return [r | {f"{key}_ci_{end}": r[key] for end in ("low", "high") if r.get(f"{key}_ci_{end}") is None}
            if r.get(key) is not None else r for r in rows]


def img(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).exists():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<p><img alt="{e(alt)}" src="data:image/png;base64,{data}"></p>'


VERDICT_CLASS = {"win": "v-win", "loss": "v-loss", "tie": "v-tie"}


def _reply(j: Judgment, model: str, base: str) -> str:
    """The judge's stored reply (both orders' replies for a combined pair) and, for a verdict read from token
    probabilities, those probabilities: what the verdict shown was decided from."""
    text = j.raw.strip()
    if j.probs:
        a_is_model = j.model_a == model
        p_model, p_base = (j.probs.get("a", 0.0), j.probs.get("b", 0.0))[:: 1 if a_is_model else -1]
        text += (f"\nverdict from token probabilities: P({model}) {p_model:.2f}, P({base}) {p_base:.2f}, "
                 f"P(neither) {j.probs.get('tie', 0.0):.2f}")
    return text


def _browser(inp: Inputs, prompts: list[Prompt], untaught: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    """The answer browser: each prompt, every model's answers, and every verdict and rating on it. Answers of an
    `untaught` model (a demo SFT model trained too briefly to learn the chat format) that begin mid-word are
    marked as such, so they do not pass for a truncation bug."""
    answers: dict[str, dict[str, list[tuple[int, str]]]] = {}
    for g in inp.generations.values():
        if g.error is None:
            answers.setdefault(g.prompt_id, {}).setdefault(g.model, []).append((g.turn, g.text))
    baselines = set(inp.baselines)

    def sides(j: Judgment) -> tuple[str, str]:
        return (j.model_b, j.model_a) if j.model_a in baselines else (j.model_a, j.model_b)

    ids = [p.id for p in prompts] or list(dict.fromkeys(list(answers) + [j.prompt_id for j in inp.judgments]))
    prompt_of = list(map(attrgetter("prompt_id"), inp.judgments))
    per_prompt = Counter(prompt_of)
    n_shown = listed = 0
    for pid in ids[:MAX_BROWSER_PROMPTS]:
        listed += per_prompt[pid]
        if n_shown and listed > MAX_BROWSER_VERDICTS:
            break
        n_shown += 1
    shown_ids = set(ids[:n_shown])  # only these are rendered: a large run's others cost nothing here
    verdicts: dict[str, list[tuple[str, str, str, str, str, str]]] = {}
    for j in compress(inp.judgments, map(shown_ids.__contains__, prompt_of)):
        model, base = sides(j)
        outcome = {None: "error", 1: "win", 0: "tie", -1: "loss"}[j.outcome(model)]
        who = j.judge + (f" ({j.annotator})" if j.annotator else "")
        verdicts.setdefault(j.prompt_id, []).append((who, model, base, outcome, j.error or "", _reply(j, model, base)))
    ratings: dict[str, list[str]] = {}
    for r in inp.ratings:
        ratings.setdefault(r.prompt_id, []).append(f"{r.judge}: {r.model} = {r.label or 'error'}")
    text = {p.id: p.user_turns for p in prompts}
    stored = set(map(attrgetter("model_a", "model_b"), inp.judgments))
    pairs = sorted({f"{b}|{a}" if a in baselines else f"{a}|{b}" for a, b in stored})
    parts = []
    for pid in ids[:n_shown]:
        vs = verdicts.get(pid, [])
        models = " ".join(sorted({f"{m}|{b}" for _, m, b, _, _, _ in vs}))
        turns = text.get(pid, ())
        body = [f'<section class="item" data-models="{e(models)}"><h3>{e(pid)}</h3>']
        for k, turn in enumerate(turns):
            body.append(f"<p><b>User{f' (turn {k + 1})' if len(turns) > 1 else ''}:</b></p><pre>{e(turn)}</pre>")
        body.append('<div class="answers">')
        for model, texts in sorted(answers.get(pid, {}).items()):
            shown = "".join((f'<span class="mark">{e(MID_WORD_MARK)}</span>'
                             if model in untaught and begins_mid_word(t) else "") + f"<pre>{e(t)}</pre>"
                            for _, t in sorted(texts))
            body.append(f"<div><b>{e(model)}</b>{shown}</div>")
        body.append("</div>")
        if vs:
            body.append("<ul>" + "".join(
                f'<li>{e(who)}: {e(m)} vs {e(b)}: <span class="{VERDICT_CLASS.get(o, "v-err")}">{e(o)}</span>'
                + (f" ({e(err)})" if err else "") + (f'<pre class="reply">{e(reply)}</pre>' if reply else "") + "</li>"
                for who, m, b, o, err, reply in vs) + "</ul>")
        if ratings.get(pid):
            body.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in ratings[pid]) + "</ul>")
        body.append("</section>")
        parts.append("".join(body))
    if len(ids) > n_shown:
        why = (f" (the page lists at most {MAX_BROWSER_VERDICTS:,} verdicts; every judgment is in the run folder's "
               "JSONL files)" if n_shown < min(len(ids), MAX_BROWSER_PROMPTS) else "")
        parts.append(f'<p class="note">The first {n_shown} of {len(ids)} prompts are shown{why}.</p>')
    return "".join(parts), pairs


def page(title: str, body: list[str], script: str | None = None) -> str:
    """A self-contained page: the house style, data: images only, and at most one script (allowed by hash)."""
    scripts = "'none'"
    if script is not None:
        scripts = "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {scripts}"
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">',
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>", *body,
        f"<script>{script}</script>" if script is not None else "", "</body></html>"])


def write_html(path: Path, cfg: RunConfig, summary: dict[str, Any], sections: list[str], inp: Inputs,
               prompts: list[Prompt], untaught: frozenset[str] = frozenset()) -> Path:
    """The page: the sections' HTML (rendered by each report section from its data) and the answer browser
    (answers of the `untaught` models that begin mid-word marked)."""
    browser, pairs = _browser(inp, prompts, untaught)
    options = '<option value="">all pairs</option>' + "".join(
        f'<option value="{e(p)}">{e(p.replace("|", " vs "))}</option>' for p in pairs)
    models, baselines = under_test(cfg)
    body = [
        f"<h1>lima-eval report: {e(cfg.name)}</h1>",
        (f'<p>Benchmark <b>{e(cfg.benchmark.name)}</b> ({summary["n_prompts"]} prompts). Models under test: '
         + ", ".join(f"<b>{e(m)}</b>" for m in models) + "; baselines: "
         + ", ".join(f"<b>{e(b)}</b>" for b in baselines)
         + f'. Created {e(summary["created_at"])}.</p>'),
        *sections,
        "<h2>Answers</h2>",
        ('<div class="controls"><input id="q" type="search" placeholder="search prompts, answers, judges" size="40"> '
        f'<select id="pair">{options}</select> <span id="shown" class="note"></span></div>'),
        browser,
    ]
    return write_atomic(path, page(f"lima-eval: {cfg.name}", body, SCRIPT))
