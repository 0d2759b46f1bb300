"""The judging stage for one judge: plan the items, skip what is on disk, reuse cached replies, ask the rest."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lima_eval.backends.base import Backend, Completion, LogprobRequest, Messages, open_backend
from lima_eval.config import JudgeSpec, RunConfig
from lima_eval.judging.definitions import JudgeDefinition, load_definition
from lima_eval.judging.items import identity, judge_label
from lima_eval.judging.kinds import Answers, Item
from lima_eval.progress import StageCounts, bar, header
from lima_eval.records import Generation, Judgment, Prompt, Rating
from lima_eval.store import RunStore

SAVE_EVERY, SAVE_SECONDS = 256, 2.0  # streaming backends: save after this many results or seconds


@dataclass
class Plan:
    definition: JudgeDefinition
    items: list[Item]
    skipped: int  # prompts (or pairs) where an answer the judge needs is missing


def answers_on_disk(cfg: RunConfig, prompts: list[Prompt], gens: dict[str, Generation]) -> Answers:
    """(prompt id, model, turn) -> this config's answer, for every answer without an error."""
    out: dict[tuple[str, str, int], Generation] = {}
    for spec in cfg.models:
        ident = cfg.generation_identity(spec)
        for p in prompts:
            for t in range(len(p.user_turns)):
                g = gens.get(Generation.make_id(p, spec.name, ident, t))
                if g is not None and not g.error:
                    out[(p.id, spec.name, t)] = g
    return out


def plan(cfg: RunConfig, spec: JudgeSpec, prompts: list[Prompt], store: RunStore,
         answers: Answers | None = None) -> Plan:
    """The items this judge is asked about, given the answers on disk (pass `answers` to share one read)."""
    definition = load_definition(spec.name)
    if answers is None:
        answers = answers_on_disk(cfg, prompts, store.generations())
    items, skipped = definition.judge_kind.plan(cfg, spec, definition, identity(spec, cfg.seed), prompts, answers)
    return Plan(definition, items, skipped)


def judge_stage(cfg: RunConfig, spec: JudgeSpec, prompts: list[Prompt], store: RunStore, show: bool = True,
                use_cache: bool = True, answers: Answers | None = None) -> tuple[StageCounts, int]:
    """Judge what is not on disk yet; returns the counts and how many items lacked an answer."""
    if spec.jury:
        from lima_eval.judging.jury import jury_stage

        return jury_stage(cfg, spec, prompts, store, show, use_cache, answers)
    counts = StageCounts()
    p = plan(cfg, spec, prompts, store, answers)
    definition, label = p.definition, judge_label(spec)
    kind = definition.judge_kind
    done = kind.on_disk(store)
    # A failed call is retried on a rerun; a reply that could not be parsed stays recorded as an error.
    todo = [i for i in p.items if i.id not in done or done[i.id].error_kind == "call"]
    counts.cached = len(p.items) - len(todo)
    header(f"judge: {label} ({definition.name} on {spec.backend}, order {spec.order}): {len(p.items)} verdicts, "
           f"{counts.cached} on disk, {len(todo)} to do", show)
    progress = bar(f"judge {label}", len(p.items), counts.cached, show)
    want = LogprobRequest(top=spec.top_logprobs, candidates=tuple(definition.options)) if spec.logprobs else None
    cache = None
    if use_cache and spec.cache and todo:
        from lima_eval.judging.cache import JudgeCache, default_path

        cache = JudgeCache(spec.cache_path or default_path())

    def record(item: Item, completion: Completion, prefix: str, cached: bool) -> Judgment | Rating:
        return kind.to_record(item, definition, label, completion, prefix, spec.logprobs, cached)

    def save(records: list) -> None:
        kind.append(store, records)
        counts.new += len(records)
        counts.errors += sum(1 for r in records if r.error)
        counts.failed_calls += sum(1 for r in records if r.error_kind == "call")
        progress.done(len(records))

    # Whether the reply prefix is prefilled depends on the backend; the cache key on the messages sent.
    prefill = bool(definition.reply_prefix) and _prefills(spec)
    prefix = (definition.reply_prefix or "") if prefill else ""
    ident = identity(spec, cfg.seed)
    backend = None
    try:
        step = len(todo) if _backend_class(spec).whole_stage else 4096
        for start in range(0, len(todo), max(1, step)):
            block = todo[start:start + step]
            msgs = [definition.messages(i, prefill) for i in block]
            rest: list[tuple[Item, Messages, str]] = [(i, m, "") for i, m in zip(block, msgs)]
            if cache is not None:
                from lima_eval.judging.cache import cache_key

                rest = [(i, m, cache_key(ident, m, want)) for i, m, _ in rest]
                hits = cache.get_many([k for _, _, k in rest])
                counts.cache_hits += len(hits)
                if hits:
                    save([record(i, hits[k], prefix, True) for i, _, k in rest if k in hits])
                rest = [r for r in rest if r[2] not in hits]
            if not rest:
                continue
            if backend is None:
                backend = open_backend(spec, seed=cfg.seed, work_dir=store.root)
                backend.on_progress = progress.partial

            def finished(batch: list[tuple[Item, Messages, str]], outs: list[Completion]) -> None:
                if cache is not None:  # paid replies are kept first, whatever reading them does next
                    cache.put_many([(k, o) for (_, _, k), o in zip(batch, outs)])
                save([record(i, o, prefix, False) for (i, _, _), o in zip(batch, outs)])

            ask(backend, rest, want, finished)
    finally:
        if backend is not None:
            counts.calls += backend.calls
            backend.close()
        if cache is not None:
            cache.close()
    progress.close()
    return counts, p.skipped


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


def _backend_class(spec: JudgeSpec) -> type[Backend]:
    from lima_eval.registry import BACKENDS

    cls: type[Backend] = BACKENDS.load(spec.backend)
    return cls


def _prefills(spec: JudgeSpec) -> bool:
    """Whether this judge endpoint continues a reply prefix (a class attribute: known before opening it)."""
    return bool(getattr(_backend_class(spec), "supports_prefill", False))
