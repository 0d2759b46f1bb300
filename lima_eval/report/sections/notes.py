"""The report's notes: what a reader must know before trusting a number, gathered from every section (each
says its own: a judge's position bias, contamination, an adaptive stop...) and from the run itself."""

from __future__ import annotations

import json
from pathlib import Path

from lima_eval.config import RunConfig
from lima_eval.recipe import DONE
from lima_eval.report.columns import inline, md
from lima_eval.report.sections import Context, Section


class Notes(Section):
    key, title, rank, place = "notes", "Notes", 190, 12

    def compute(self, ctx: Context) -> list[str]:
        cfg, _ = ctx.run
        said: list[tuple[int, str]] = [(10, n) for n in [_weak_judge_note(cfg)] if n]
        caps = sorted({m.sampling.max_new_tokens for m in cfg.models if not m.imported})
        if caps and caps[0] < 512:
            said.append((11, f"Answers were capped at {', '.join(map(str, caps))} new tokens (LIMA used 2,048)."))
        if undertrained(cfg):
            assert cfg.sft is not None
            said.append((12, (f"The SFT stage ran {_sft_steps(cfg)} optimiser step(s) on `{cfg.sft.base}`: that "
                             "demonstrates the path, not LIMA's result (LIMA: 1,000 examples x 15 epochs, GPU "
                             f"work). So few steps do not teach the chat format either: `{cfg.sft.name}` still "
                             "continues the text it is given, so its answers may begin mid-word. "
                             "That is the undertrained model, not a truncated answer; report.html's answer browser "
                             "marks such answers.")))
        rows, adaptive = ctx.data.get("rows") or [], ctx.data.get("adaptive") or []
        missing = sum(r["missing"] or 0 for r in rows)
        by_design = sum(r["prompts"] - r["prompts_judged"] for r in adaptive if r["decision"])
        if missing > by_design:
            said.append((30, f"{missing - by_design} prompt(s) have no judgment for their pair (an answer failed or "
                             "was not judged yet); see the missing column. Rerun `lima-eval run` to fill them."
                             + (f" {by_design} more were left unjudged by stop_when_decided, as planned."
                                if by_design else "")))
        errors = sum(r["errors"] for r in rows) + sum(r["errors"] for r in ctx.data.get("ratings") or []
                                                      if r["subset"] == "all")
        abstained = sum(c["jury"]["abstained_pairs"] for c in ctx.data.get("judges") or [] if c.get("jury"))
        if errors > abstained:
            said.append((40, (f"{errors - abstained} judgment(s) have no readable verdict; they are counted as errors, "
                             "not ties.")))
        for section in ctx.shared.get("sections", []):
            if section.key in ctx.data and section is not self:
                said += section.notes(ctx.data[section.key], ctx)
        return [n for _, n in sorted(said, key=lambda x: x[0])]

    def markdown(self, data: list[str], ctx: Context) -> str:
        return "\n".join(["## Notes", ""] + [f"- {md(n)}" for n in data]) + "\n" if data else ""

    def html(self, data: list[str], ctx: Context) -> list[str]:
        return ["<h2>Notes</h2><ul>"] + [f"<li>{inline(n)}</li>" for n in data] + ["</ul>"] if data else []


class Conclusions(Section):
    key, title, rank, place = "conclusions", "What the numbers say", 200, 11

    def compute(self, ctx: Context) -> list[str]:
        return _conclusions(ctx.data.get("rows") or [], {c["judge"]: c for c in ctx.data.get("judges") or []})

    def markdown(self, data: list[str], ctx: Context) -> str:
        return "\n".join(["## What the numbers say", ""] + [f"- {md(c)}" for c in data]) + "\n" if data else ""

    def html(self, data: list[str], ctx: Context) -> list[str]:
        if not data:
            return []
        return ["<h2>What the numbers say</h2><ul>"] + [f"<li>{inline(c)}</li>" for c in data] + ["</ul>"]


def _sft_steps(cfg: RunConfig) -> int | None:
    path = Path(cfg.sft.out) / DONE if cfg.sft is not None else None
    return json.loads(path.read_text()).get("steps") if path is not None and path.exists() else None


def undertrained(cfg: RunConfig) -> bool:
    """Whether the run's SFT stage ran too few optimiser steps (under 100) to teach the model the chat format."""
    steps = _sft_steps(cfg)
    return steps is not None and steps < 100


def _weak_judge_note(cfg: RunConfig) -> str | None:
    if cfg.judge.backend == "hf" and cfg.judge.model.startswith("embedded:"):
        return (
            f"The judge here is `{cfg.judge.model}`, a tiny local model: a smoke-test judge whose verdicts say "
            "little about quality. For real numbers point the judge at a strong model, e.g. "
            "`--set judge.backend=openai --set judge.model=gpt-4o` (key in OPENAI_API_KEY), or any "
            "OpenAI-compatible server with "
            "`--set judge.backend=openai --set judge.base_url=http://HOST:PORT/v1 --set judge.model=NAME`."
        )
    return None


def _conclusions(rows: list[dict], cards: dict[str, dict]) -> list[str]:
    """One line per row: no finding where the judge could not tell the answers apart (it fails its own
    consistency checks, judges.cannot_tell_apart), else a clear difference (the win rate's interval excludes one
    half) or none; a win rate averaged from soft scores has the discrete one beside it (docs/report.md)."""
    out = []
    for r in rows:
        lo, hi = r.get("win_rate_ci_low"), r.get("win_rate_ci_high")
        who = f"`{r['model']}` vs `{r['baseline']}` ({r['judge']})"
        why = (cards.get(r["judge"]) or {}).get("cannot_tell_apart")
        discrete = _discrete(r) if r.get("soft_scores") else ""
        if why and r.get("win_rate") is not None:
            rates = f"win rate {100 * r['win_rate']:.1f}%" + (
                f" (discrete {100 * r['discrete_win_rate']:.1f}%)" if discrete else "")
            out.append(f"{who}: no finding. The judge could not tell the answers apart: {why}. Its verdicts follow "
                       f"the order the answers were shown in, not the answers, so its {rates} is no evidence "
                       "either way, not even that the models are equal.")
        elif lo is None or hi is None:
            out.append(f"{who}: too few prompts to tell (n = {r['n']}).")
        elif lo > 0.5:
            out.append(f"{who}: `{r['model']}` is preferred (win rate {100 * r['win_rate']:.1f}%, 95% interval "
                       f"{100 * lo:.1f} - {100 * hi:.1f}{discrete}).")
        elif hi < 0.5:
            out.append(f"{who}: `{r['baseline']}` is preferred (win rate {100 * r['win_rate']:.1f}%, 95% interval "
                       f"{100 * lo:.1f} - {100 * hi:.1f}{discrete}).")
        else:
            out.append(f"{who}: no clear difference (the 95% interval of the win rate, {100 * lo:.1f} - "
                       f"{100 * hi:.1f}, contains 50%{discrete}).")
    return out


def _discrete(r: dict) -> str:
    """The discrete win rate, said after a win rate averaged from soft scores."""
    if r.get("discrete_win_rate") is None:
        return ""
    lo, hi = r.get("discrete_win_rate_ci_low"), r.get("discrete_win_rate_ci_high")
    return (f"; averaged from the judge's soft scores: its discrete win rate, a win 1, a tie 1/2, is "
            f"{100 * r['discrete_win_rate']:.1f}%" + ("" if lo is None or hi is None else
                                                     f", 95% interval {100 * lo:.1f} - {100 * hi:.1f}"))


