"""One judge's stage: plan the items, skip what is on disk, reuse cached replies, ask the rest.

A jury's jurors each run through it too (jury.py); the pipeline (pipeline.judge_stage) chooses which a judge is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lima_eval.backends.base import Backend, Completion, LogprobRequest, Messages, open_backend
from lima_eval.config import JudgeSpec, RunConfig
from lima_eval.judging.adaptive import is_close, judge_pair, prompt_order, prompt_scores
from lima_eval.judging.cache import JudgeCache, cache_key, default_path
from lima_eval.judging.definitions import JudgeDefinition, load_definition
from lima_eval.judging.items import identity, judge_label
from lima_eval.judging.kinds import Answers, Item
from lima_eval.progress import StageCounts, bar, header
from lima_eval.records import Judgment, Prompt, Rating
from lima_eval.registry import BACKENDS
from lima_eval.run import answers_on_disk
from lima_eval.store import RunStore

SAVE_EVERY, SAVE_SECONDS = 256, 2.0  # streaming backends: save after this many results or seconds


@dataclass
class Plan:
    definition: JudgeDefinition
    items: list[Item]
    skipped: int  # prompts (or pairs) where an answer the judge needs is missing


def plan(cfg: RunConfig, spec: JudgeSpec, prompts: list[Prompt], store: RunStore,
         answers: Answers | None = None) -> Plan:
    """The items this judge is asked about, given the answers on disk (pass `answers` to share one read)."""
    definition = load_definition(spec.name)
    if answers is None:
        answers = answers_on_disk(cfg, prompts, store.generations())
    items, skipped = definition.judge_kind.plan(cfg, spec, definition, identity(spec, cfg.seed), prompts, answers)
    return Plan(definition, items, skipped)


def one_judge_stage(cfg: RunConfig, spec: JudgeSpec, prompts: list[Prompt], store: RunStore, show: bool = True,
                    use_cache: bool = True, answers: Answers | None = None) -> tuple[StageCounts, int]:
    """Judge what is not on disk yet (a single judge, not a jury); returns the counts and how many items lacked
    an answer."""
    p = plan(cfg, spec, prompts, store, answers)
    asking = Asking(cfg, spec, p.definition, store, use_cache)
    adaptive = spec.order == "both-if-close" or spec.stop_when_decided is not None
    todo = asking.needed(p.items)
    asking.counts.cached = len(p.items) - len(todo)
    header(f"judge: {asking.label} ({p.definition.name} on {spec.backend}, order {spec.order}): {len(p.items)} "
           f"verdicts{' at most (adaptive)' if adaptive else ''}, {asking.counts.cached} on disk, {len(todo)} to do",
           show)
    asking.progress = bar(f"judge {asking.label}", len(p.items), asking.counts.cached, show)
    try:
        if spec.stop_when_decided is not None:
            until_decided(asking, p.items, len(prompts))
        else:
            asking.orders(p.items)
    finally:
        asking.close()
    return asking.counts, p.skipped


class Asking:
    """One judge's requests: what is on disk, the cache, the backend (opened on first need), and the saving."""

    def __init__(self, cfg: RunConfig, spec: JudgeSpec, definition: JudgeDefinition, store: RunStore,
                 use_cache: bool):
        self.cfg, self.spec, self.definition, self.store = cfg, spec, definition, store
        self.label, self.kind = judge_label(spec), definition.judge_kind
        self.done = self.kind.on_disk(store)
        self.counts = StageCounts()
        self.progress = bar("", 0, 0, False)
        self.want = LogprobRequest(top=spec.top_logprobs, candidates=tuple(definition.options)) if spec.logprobs \
            else None
        self.cache: Any = None
        self.use_cache = use_cache and spec.cache  # opened on the first request (a no-op rerun never opens it)
        # Whether the reply prefix is prefilled depends on the backend; the cache key on the messages sent.
        self.backend_class: type[Backend] = BACKENDS.load(spec.backend)  # resolved once per judge
        prefill = bool(definition.reply_prefix) and bool(getattr(self.backend_class, "supports_prefill", False))
        self.prefill, self.prefix = prefill, (definition.reply_prefix or "") if prefill else ""
        self.ident = identity(spec, cfg.seed)
        self.backend: Backend | None = None

    def needed(self, items: list[Item]) -> list[Item]:
        """Items without a record; a failed call is retried, an unreadable reply stays recorded."""
        return [i for i in items if i.id not in self.done or self.done[i.id].error_kind == "call"]

    def orders(self, items: list[Item]) -> None:
        """Judge the items (order both-if-close: the first order, then the second where the first was close)."""
        if self.spec.order != "both-if-close" or not self.kind.orders_pairs:  # e.g. a rating has no order
            self.ask(self.needed(items))
            return
        firsts, other = self.kind.first_orders(items, self.cfg.seed)  # the pair kind owns its orders
        self.ask(self.needed(firsts))
        seconds = [other[i.id] for i in firsts
                   if i.id in other and is_close(self.done.get(i.id), self.spec.close_below)]
        self.ask(self.needed(seconds))

    def ask(self, todo: list[Item]) -> None:
        if todo and self.use_cache and self.cache is None:
            self.cache = JudgeCache(self.spec.cache_path or default_path())
        step = len(todo) if self.backend_class.whole_stage else 4096
        for start in range(0, len(todo), max(1, step)):
            block = todo[start:start + step]
            msgs = [self.definition.messages(i, self.prefill) for i in block]
            rest: list[tuple[Item, Messages, str]] = [(i, m, "") for i, m in zip(block, msgs)]
            if self.cache is not None:
                rest = [(i, m, cache_key(self.ident, m, self.want)) for i, m, _ in rest]
                hits = self.cache.get_many([k for _, _, k in rest])
                self.counts.cache_hits += len(hits)
                if hits:
                    self.save([self.record(i, hits[k], True) for i, _, k in rest if k in hits])
                rest = [r for r in rest if r[2] not in hits]
            if not rest:
                continue
            if self.backend is None:
                self.backend = open_backend(self.spec, seed=self.cfg.seed, work_dir=self.store.root)
                self.backend.on_progress = self.progress.partial
            ask(self.backend, rest, self.want, self.finished)

    def finished(self, batch: list[tuple[Item, Messages, str]], outs: list[Completion]) -> None:
        if self.cache is not None:  # paid replies are kept first, whatever reading them does next
            self.cache.put_many([(k, o) for (_, _, k), o in zip(batch, outs)])
        self.save([self.record(i, o, False) for (i, _, _), o in zip(batch, outs)])

    def record(self, item: Item, completion: Completion, cached: bool) -> Judgment | Rating:
        return self.kind.to_record(item, self.definition, self.label, completion, self.prefix, self.spec.logprobs,
                                   cached)

    def save(self, records: list) -> None:
        self.kind.append(self.store, records)
        self.done.update({r.id: r for r in records})
        self.counts.new += len(records)
        self.counts.errors += sum(1 for r in records if r.error)
        self.counts.failed_calls += sum(1 for r in records if r.error_kind == "call")
        self.progress.done(len(records))

    def close(self) -> None:
        if self.backend is not None:
            self.counts.calls += self.backend.calls
            self.backend.close()
        if self.cache is not None:
            self.cache.close()
        self.progress.close()


def until_decided(asking: Asking, items: list[Item], n_prompts: int) -> None:
    """stop_when_decided: each (model, baseline) pair's prompts in a seeded random order, `step` a round, until
    its always-valid interval clears the threshold or its prompts run out (lima_eval/judging/adaptive.py)."""
    rule = asking.spec.stop_when_decided
    assert rule is not None
    pairs: dict[tuple[str, str], dict[str, list[Item]]] = {}
    for i in items:
        pairs.setdefault(asking.kind.pair_of(i), {}).setdefault(i.prompt.id, []).append(i)
    queue = {pair: prompt_order(asking.cfg.seed, by_prompt) for pair, by_prompt in pairs.items()}
    taken = dict.fromkeys(pairs, 0)
    live = list(pairs)
    while live:
        round_items = []
        for pair in live:
            for pid in queue[pair][taken[pair]:taken[pair] + rule.step]:
                round_items.extend(pairs[pair][pid])
            taken[pair] = min(len(queue[pair]), taken[pair] + rule.step)
        asking.orders(round_items)
        still = []
        for pair in live:
            records = [asking.done[i.id] for pid in queue[pair][:taken[pair]] for i in pairs[pair][pid]
                       if i.id in asking.done]
            scores = list(prompt_scores(records, asking.spec.order_rule).values())
            if judge_pair(scores, rule, n_prompts)[3] is None and taken[pair] < len(queue[pair]):
                still.append(pair)
        live = still


Batch = list[tuple[Item, Messages, str]]


def ask(backend: Backend, requests: Batch, want: LogprobRequest | None,
        finished: Callable[[Batch, list[Completion]], None]) -> None:
    """Send the requests; finished(batch, completions) is called as results come in.

    A streaming backend (API) gets every request at once, `concurrency` in flight all the time, and results
    are handed on every SAVE_EVERY replies or SAVE_SECONDS, so no slot waits for a chunk to finish. Other
    backends get chunks of their chunk_size.
    """
    if not backend.streams_results:
        for c0 in range(0, len(requests), backend.chunk_size):
            chunk = requests[c0:c0 + backend.chunk_size]
            finished(chunk, backend.generate([m for _, m, _ in chunk], logprobs=want))
        return
    pending: list[tuple[int, Completion]] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal last
        finished([requests[i] for i, _ in pending], [o for _, o in pending])
        pending.clear()
        last = time.monotonic()

    def arrived(idx: int, out: Completion) -> None:
        pending.append((idx, out))
        if len(pending) >= SAVE_EVERY or time.monotonic() - last > SAVE_SECONDS:
            flush()

    backend.generate([m for _, m, _ in requests], logprobs=want, on_result=arrived)
    if pending:
        flush()
