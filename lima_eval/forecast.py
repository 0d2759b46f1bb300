"""Know the bill before paying it (`lima-eval run --dry-run`): per stage, the requests a run would make, those
already on disk or in the judge cache, estimated tokens and cost (docs/forecast.md).

Nothing is written and no backend is opened. Tokens are estimated as characters / 4 (a documented rule of
thumb for English text with GPT-style tokenisers). Input: the messages as they would be sent (a judge item
whose answers are not generated yet counts the model's whole max_new_tokens for each answer). Output: the
endpoint's max_new_tokens per request, which is an upper bound. Cost uses the price table (judges/prices.yaml
and a judge's own `prices:`); batch prices are half the synchronous ones, as OpenAI prices its Batch API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima_eval.config import JudgeSpec, RunConfig
from lima_eval.judging.asking import Asking, answers_on_disk, plan
from lima_eval.judging.cache import JudgeCache, cache_key, default_path
from lima_eval.judging.definitions import price_factor, price_in, shared_prices
from lima_eval.judging.items import judge_label
from lima_eval.judging.jury import jurors
from lima_eval.records import Prompt
from lima_eval.store import RunStore

CHARS_PER_TOKEN = 4
BATCH_DISCOUNT = 0.5


@dataclass
class StageForecast:
    stage: str
    requests: int = 0  # what the stage asks for in all
    on_disk: int = 0
    cached: int = 0  # judge replies the persistent cache already holds (no request)
    tokens_in: int = 0  # of the requests still to make
    tokens_out: int = 0
    price: dict[str, float] | None = None  # synchronous USD per 1M tokens
    factor: float = 1.0  # the share of it the stage's backend pays (openai-batch: 0.5)

    @property
    def to_do(self) -> int:
        return self.requests - self.on_disk - self.cached

    @property
    def sync_cost(self) -> float | None:
        if self.price is None:
            return None
        return (self.tokens_in * self.price["input"] + self.tokens_out * self.price["output"]) / 1e6

    @property
    def cost(self) -> float | None:
        """What this config pays: the synchronous cost, or the batch cost on a batch backend."""
        sync = self.sync_cost
        return None if sync is None else sync * self.factor

    def as_dict(self) -> dict[str, Any]:
        cost, sync = self.cost, self.sync_cost
        return {"stage": self.stage, "requests": self.requests, "on_disk": self.on_disk, "cached": self.cached,
                "to_do": self.to_do, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "cost_usd": None if cost is None else round(cost, 4),
                "batch_cost_usd": None if sync is None else round(sync * BATCH_DISCOUNT, 4)}


def _tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def forecast(cfg: RunConfig, prompts: list[Prompt], use_cache: bool = True) -> list[StageForecast]:
    """Every stage of `run` for this config, as it stands on disk now (use_cache=False: as `run --no-cache`,
    which asks the judge again instead of taking cached replies)."""
    store = RunStore(cfg.run_dir)
    gens = store.generations() if cfg.run_dir.exists() else {}
    prices = shared_prices()
    out = []
    for spec in cfg.models:
        if spec.imported:
            continue
        gid = cfg.generation_ids(spec)
        f = StageForecast(f"generate {spec.name}", price=price_in(prices, spec.model),
                          factor=price_factor(spec.backend))
        for p in prompts:
            for t, text in enumerate(p.user_turns):
                f.requests += 1
                g = gens.get(gid(p, t))
                if g is not None and not g.error:
                    f.on_disk += 1
                    continue
                f.tokens_in += _tokens((spec.system_prompt or "") + "".join(p.user_turns[: t + 1]))
                f.tokens_in += t * spec.sampling.max_new_tokens  # its own earlier answers, at most
                f.tokens_out += spec.sampling.max_new_tokens
        out.append(f)
    answers = answers_on_disk(cfg, prompts, gens)
    for judge in cfg.all_judges():
        for member in (jurors(judge) if judge.jury else [judge]):
            out.append(_judge_forecast(cfg, member, prompts, store, answers, use_cache))
    return out


def _judge_forecast(cfg: RunConfig, spec: JudgeSpec, prompts: list[Prompt], store: Any, answers: Any,
                    use_cache: bool = True) -> StageForecast:
    p = plan(cfg, spec, prompts, store, answers)
    definition, skipped = p.definition, p.skipped
    adaptive = spec.order == "both-if-close" or spec.stop_when_decided is not None
    f = StageForecast(f"judge {judge_label(spec)}{' (at most)' if adaptive else ''}",
                      price=definition.price(spec.model), factor=price_factor(spec.backend))
    # The stage's own view: what is on disk, the messages as sent (prefilled or not), the cache keys.
    asking = Asking(cfg, spec, definition, store, use_cache)
    todo = asking.needed(p.items)
    f.requests = len(p.items)
    f.on_disk = len(p.items) - len(todo)
    msgs = [definition.messages(i, asking.prefill) for i in todo]
    if asking.use_cache and todo:
        path = spec.cache_path or default_path()
        if Path(path).exists():  # a dry run creates no cache file
            keys = [cache_key(asking.ident, m, asking.want) for m in msgs]
            cache = JudgeCache(path)
            try:
                hits = cache.get_many(keys)
            finally:
                cache.close()
            f.cached = len(hits)
            msgs = [m for m, k in zip(msgs, keys) if k not in hits]
    f.tokens_in = sum(_tokens("".join(x["content"] for x in m)) for m in msgs)
    f.tokens_out = len(msgs) * spec.sampling.max_new_tokens
    # Items whose answers are not generated yet: as many requests per missing pair as the order setting asks.
    per = 2 if spec.two_orders and not definition.is_rating else 1
    missing = skipped * per
    if missing:
        longest = max((m.sampling.max_new_tokens for m in cfg.models), default=0)
        prompt_chars = sum(len(p.text) for p in prompts) // max(1, len(prompts))
        answers_per_item = 1 if definition.is_rating else 2
        f.requests += missing
        f.tokens_in += missing * (_tokens(definition.template) + _tokens("x" * prompt_chars)
                                  + answers_per_item * longest)
        f.tokens_out += missing * spec.sampling.max_new_tokens
    return f


def keys_line(keys: dict[str, bool]) -> str:
    """Which API keys (environment variables) the real run needs, and whether each is set."""
    if not keys:
        return "API keys the real run needs: none"
    said = [f"{env} ({'set' if ok else 'NOT SET: the real run stops until it is'})" for env, ok in keys.items()]
    return f"API keys the real run needs: {', '.join(said)}"


def table(rows: list[StageForecast]) -> str:
    head = f"{'stage':40s} {'requests':>9s} {'on disk':>8s} {'cached':>7s} {'to do':>7s} {'tokens in':>10s} " \
           f"{'tokens out':>10s} {'cost USD':>9s} {'batch USD':>9s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        d = r.as_dict()
        cost = "-" if d["cost_usd"] is None else f"{d['cost_usd']:.4f}"
        batch = "-" if d["batch_cost_usd"] is None else f"{d['batch_cost_usd']:.4f}"
        lines.append(f"{r.stage[:40]:40s} {r.requests:9d} {r.on_disk:8d} {r.cached:7d} {r.to_do:7d} "
                     f"{r.tokens_in:10d} {r.tokens_out:10d} {cost:>9s} {batch:>9s}")
    known = [r.cost for r in rows if r.cost is not None]
    all_batch = sum(r.sync_cost * BATCH_DISCOUNT for r in rows if r.sync_cost is not None)
    unknown = [r.stage for r in rows if r.cost is None and r.to_do]
    total = f"total: {sum(known):.4f} USD (all batch {all_batch:.4f})" if known else "total: -"
    lines.append(total + (f"; no price for {', '.join(unknown)}" if unknown else ""))
    return "\n".join(lines)
