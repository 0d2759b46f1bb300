"""run(): generate -> judge -> report, each stage skipping the work already on disk."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from lima_eval.backends.base import open_backend
from lima_eval.benchmarks import load_prompts
from lima_eval.config import RunConfig, to_plain
from lima_eval.judging.definitions import load_definition
from lima_eval.judging.pairwise import PairItem, judge_label, make_item, to_judgment
from lima_eval.progress import bar
from lima_eval.records import Generation, Prompt
from lima_eval.store import RunStore

log = logging.getLogger(__name__)


@dataclass
class StageCounts:
    cached: int = 0
    new: int = 0
    errors: int = 0
    calls: int = 0
    missing_imports: int = 0  # prompts an `imported` model has no answer for


@dataclass
class RunResult:
    run_dir: Path
    report_dir: Path
    generations: StageCounts = field(default_factory=StageCounts)
    judgments: StageCounts = field(default_factory=StageCounts)
    skipped_pairs: int = 0  # prompts where one side has no answer (its generation failed)

    @property
    def calls(self) -> int:
        return self.generations.calls + self.judgments.calls


def conversation(prompt: Prompt, answers: list[str], turn: int) -> list[dict[str, str]]:
    """Messages for answering user turn `turn`: earlier user turns with the model's own answers to them."""
    msgs: list[dict[str, str]] = []
    for i, user in enumerate(prompt.user_turns[: turn + 1]):
        msgs.append({"role": "user", "content": user})
        if i < turn:
            msgs.append({"role": "assistant", "content": answers[i]})
    return msgs


def generate_stage(cfg: RunConfig, prompts: list[Prompt], store: RunStore, show: bool = True) -> StageCounts:
    counts = StageCounts()
    on_disk = store.generations()
    n_turns = max(len(p.user_turns) for p in prompts)
    for spec in cfg.models:
        ident = spec.identity() | {"seed": cfg.seed}
        ids = {(p.id, t): Generation.make_id(p, spec.name, ident, t) for p in prompts for t in range(len(p.user_turns))}
        total = len(ids)
        cached = sum(1 for gid in ids.values() if gid in on_disk and not on_disk[gid].error)
        counts.cached += cached
        if spec.backend == "imported":  # answers come from `lima-eval import-answers`, never generated here
            counts.missing_imports += total - cached
            continue
        progress = bar(f"generate {spec.name}", total, cached, show)
        backend = None
        try:
            # Turn by turn: turn t of a conversation needs the model's own answers to turns 0..t-1.
            for turn in range(n_turns):
                todo = []
                for p in prompts:
                    if turn >= len(p.user_turns):
                        continue
                    gid = ids[(p.id, turn)]
                    if gid in on_disk and not on_disk[gid].error:
                        continue
                    earlier = [on_disk.get(ids[(p.id, t)]) for t in range(turn)]
                    if all(g is not None and not g.error for g in earlier):
                        todo.append((p, [g.text for g in earlier]))  # type: ignore[union-attr]
                if not todo:
                    continue
                if backend is None:
                    backend = open_backend(spec, seed=cfg.seed)
                sampling = backend.sampling_record()
                for start in range(0, len(todo), backend.chunk_size):
                    chunk = todo[start:start + backend.chunk_size]
                    outs = backend.generate([conversation(p, answers, turn) for p, answers in chunk])
                    records = [
                        Generation(id=ids[(p.id, turn)], prompt_id=p.id, model=spec.name, text=o.text, error=o.error,
                                   backend=spec.backend, sampling=sampling, usage=o.usage,
                                   finish_reason=o.finish_reason, turn=turn)
                        for (p, _), o in zip(chunk, outs)
                    ]
                    store.append_generations(records)
                    on_disk.update({r.id: r for r in records})
                    counts.new += len(records)
                    counts.errors += sum(1 for r in records if r.error)
                    progress.update(sum(1 for r in records if not r.error))
        finally:
            if backend is not None:
                counts.calls += backend.calls
                backend.close()
        progress.close()
    return counts


def plan_judging(cfg: RunConfig, prompts: list[Prompt], store: RunStore) -> tuple[list[PairItem], int]:
    """The pairwise items this config asks for, given the answers on disk, and how many prompts lack one."""
    definition = load_definition(cfg.judge.name)
    gens = store.generations()
    answers: dict[tuple[str, str], Generation] = {}
    for spec in cfg.models:
        ident = spec.identity() | {"seed": cfg.seed}
        for p in prompts:
            g = gens.get(Generation.make_id(p, spec.name, ident))
            if g is not None and not g.error:
                answers[(p.id, spec.name)] = g
    items, skipped = [], 0
    for model, baseline in cfg.pairs():
        for p in prompts:
            a, b = answers.get((p.id, model)), answers.get((p.id, baseline))
            if a is None or b is None:
                skipped += 1
                continue
            items.append(make_item(definition, cfg.judge, cfg.seed, p, a, b))
    return items, skipped


def judge_stage(cfg: RunConfig, prompts: list[Prompt], store: RunStore, show: bool = True) -> tuple[StageCounts, int]:
    counts = StageCounts()
    definition = load_definition(cfg.judge.name)
    label = judge_label(cfg.judge)
    items, skipped = plan_judging(cfg, prompts, store)
    done = store.judgments()
    # A failed call is retried on a rerun; a reply that could not be parsed stays recorded as an error.
    todo = [i for i in items if i.id not in done or done[i.id].error_kind == "call"]
    counts.cached = len(items) - len(todo)
    progress = bar(f"judge {label}", len(items), counts.cached, show)
    if todo:
        with open_backend(cfg.judge, seed=cfg.seed) as backend:
            for start in range(0, len(todo), backend.chunk_size):
                chunk = todo[start:start + backend.chunk_size]
                prefill = backend.supports_prefill and bool(definition.reply_prefix)
                outs = backend.generate([i.messages(definition, prefill) for i in chunk])
                prefix = (definition.reply_prefix or "") if prefill else ""
                records = [to_judgment(i, definition, label, "" if o.error else prefix + o.text, o.error, o.usage)
                           for i, o in zip(chunk, outs)]
                store.append_judgments(records)
                counts.new += len(records)
                counts.errors += sum(1 for r in records if r.error)
                progress.update(len(records))
            counts.calls += backend.calls
    progress.close()
    return counts, skipped


def run(cfg: RunConfig, show_progress: bool = True) -> RunResult:
    """Run every stage for `cfg`; safe to interrupt and call again."""
    store = RunStore(cfg.run_dir)
    store.write_config(to_plain(cfg))  # written before any work starts
    prompts = load_prompts(cfg.benchmark)
    result = RunResult(run_dir=store.root, report_dir=store.report_dir)
    if cfg.sft is not None:
        from lima_eval.sft.train import train

        train(cfg.sft, show_progress=show_progress)
    result.generations = generate_stage(cfg, prompts, store, show_progress)
    result.judgments, result.skipped_pairs = judge_stage(cfg, prompts, store, show_progress)
    from lima_eval.report.build import build_report

    build_report(store.root, cfg=cfg, prompts=prompts)
    return result
