"""run(): generate -> judge -> report, each stage skipping the work already on disk."""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lima_eval.backends.base import open_backend
from lima_eval.benchmarks import load_prompts
from lima_eval.config import Endpoint, JudgeSpec, RunConfig, needs_model, to_plain
from lima_eval.contamination import check_run, training_texts
from lima_eval.errors import BudgetError, ConfigError, MissingKeyError
from lima_eval.forecast import forecast
from lima_eval.judging.asking import Answers, answers_on_disk, one_judge_stage
from lima_eval.judging.definitions import load_definition
from lima_eval.judging.jury import check_jurors, jury_stage
from lima_eval.lock import RunLock
from lima_eval.progress import StageCounts, bar, header
from lima_eval.recipe import is_complete
from lima_eval.records import Generation, Prompt
from lima_eval.registry import BACKENDS
from lima_eval.report.freshness import report_is_current
from lima_eval.sft.data import load_conversations
from lima_eval.store import RunStore

log = logging.getLogger(__name__)


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
        id_of = cfg.generation_ids(spec)
        ids = {(p.id, t): id_of(p, t) for p in prompts for t in range(len(p.user_turns))}
        total = len(ids)
        cached = sum(1 for gid in ids.values() if gid in on_disk and not on_disk[gid].error)
        counts.cached += cached
        if spec.imported:  # answers come from `lima-eval import-answers`, never generated here
            counts.missing_imports += total - cached
            continue
        header(f"generate: model {spec.name} ({spec.backend}, {spec.model}): {total} answers, {cached} on disk, "
               f"{total - cached} to do", show)
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
                    backend = open_backend(spec, seed=cfg.seed, work_dir=store.root)
                    backend.on_progress = progress.partial
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
                    progress.done(sum(1 for r in records if not r.error))
        finally:
            if backend is not None:
                counts.calls += backend.calls
                backend.close()
        progress.close()
    return counts


def judge_stage(cfg: RunConfig, spec: JudgeSpec, prompts: list[Prompt], store: RunStore, show: bool = True,
                use_cache: bool = True, answers: Answers | None = None) -> tuple[StageCounts, int]:
    """One judge of the config, or one jury (each juror through the same stage, their verdicts combined): the
    counts and how many items lacked an answer."""
    stage = jury_stage if spec.jury else one_judge_stage
    return stage(cfg, spec, prompts, store, show, use_cache, answers)


def judge_all(cfg: RunConfig, prompts: list[Prompt], store: RunStore, show: bool = True,
              use_cache: bool = True) -> tuple[StageCounts, int]:
    """Every judge of the config in turn (the pairwise `judge`, then `judges`)."""
    total, skipped = StageCounts(), 0
    answers = answers_on_disk(cfg, prompts, store.generations())  # judging writes no answers: read them once
    for spec in cfg.all_judges():
        counts, missing = judge_stage(cfg, spec, prompts, store, show, use_cache, answers)
        total.add(counts)
        skipped += missing
    return total, skipped


def run(cfg: RunConfig, show_progress: bool = True, use_cache: bool = True, wait: bool = False) -> RunResult:
    """Run every stage for `cfg`; safe to interrupt and call again. The run folder's lock is held throughout (a
    second writer is refused, or waits with wait=True)."""
    def waiting(holder: str) -> None:  # said even with --no-progress: a silent wait looks like a hang
        print(f"run: {cfg.run_dir} is being written by {holder}; waiting for it to finish", file=sys.stderr,
              flush=True)

    prompts = preflight(cfg)  # everything the run will need, checked before anything is written or paid for
    with RunLock(cfg.run_dir, wait=wait, on_wait=waiting):
        return _run(cfg, prompts, show_progress, use_cache)


def preflight(cfg: RunConfig, keys: bool = True) -> list[Prompt]:
    """Check what a run needs before it writes or pays for anything: the run folder's place, the prompts, every
    judge definition (template, kind and parser), every backend's own checks (an API key's variable), and the
    SFT data. Returns the prompts. Raises a LimaEvalError naming the file, line and field. keys=False (a dry run,
    which sends nothing): an unset API key is no error (api_keys says which are)."""
    for parent in [cfg.run_dir, *cfg.run_dir.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"config key 'output_dir': {parent} is a file, not a folder")
    prompts = load_prompts(cfg.benchmark)
    for i, judge in enumerate(cfg.all_judges()):
        definition = load_definition(judge.name)
        if judge.stop_when_decided is not None and definition.is_rating:
            raise ConfigError(f"config key '{'judge' if i == 0 else f'judges.{i - 1}'}.stop_when_decided': judge "
                              f"'{judge.name}' rates answers; stopping applies to pairwise win rates")
        if judge.jury:
            check_jurors(judge, "judge" if i == 0 else f"judges.{i - 1}")
    for endpoint in _endpoints(cfg):
        try:
            BACKENDS.load(endpoint.backend).preflight(endpoint)
        except MissingKeyError:
            if keys:
                raise
    if cfg.contamination.data:
        for source in cfg.contamination.data:
            training_texts(source)
    if cfg.sft is not None:
        local = cfg.sft.data == "demo" or Path(cfg.sft.data).exists() or cfg.sft.data.endswith(".jsonl")
        if local and not is_complete(cfg.sft):
            load_conversations(cfg.sft.data, cfg.sft.max_examples)
    for i, judge in enumerate(cfg.all_judges()):
        if not judge.jury:
            needs_model(judge, "judge" if i == 0 else f"judges.{i - 1}")
    return prompts


def _endpoints(cfg: RunConfig) -> list[Endpoint]:
    """Every endpoint a run calls: its models (but imported ones) and its judges (a jury's jurors)."""
    every = [*cfg.models, *(m for j in cfg.all_judges() for m in (j.jury or [j]))]
    return [e for e in every if not e.imported]


def api_keys(cfg: RunConfig) -> dict[str, bool]:
    """The environment variables whose API keys a real run of cfg needs, each with whether it is set."""
    out: dict[str, bool] = {}
    for endpoint in _endpoints(cfg):
        env = BACKENDS.load(endpoint.backend).api_key_env(endpoint)
        if env:
            out[env] = bool(os.environ.get(env))
    return out


def _run(cfg: RunConfig, prompts: list[Prompt], show_progress: bool, use_cache: bool) -> RunResult:
    store = RunStore(cfg.run_dir)
    store.write_config(to_plain(cfg))  # written once everything it needs has been checked
    result = RunResult(run_dir=store.root, report_dir=store.report_dir)
    if cfg.sft is not None:
        sft_stage(cfg, show_progress)
    spent = _within_budget(cfg, prompts, "generate", 0.0, "nothing yet", use_cache)
    result.generations = generate_stage(cfg, prompts, store, show_progress)
    _within_budget(cfg, prompts, "judge", spent, "the answers (generation is complete)", use_cache)
    result.judgments, result.skipped_pairs = judge_all(cfg, prompts, store, show_progress, use_cache)
    if report_is_current(store, cfg):
        header(f"report: {store.report_dir} is up to date (nothing changed since it was written)", show_progress)
    else:
        header(f"report: writing {store.report_dir}", show_progress)
        # Imported here, not at the top: the report pulls in numpy and every section, which a no-op rerun (the
        # report is current) never needs (`python -X importtime -c "import lima_eval.pipeline"`: 0.29 s with
        # it at module level, 0.17 s without).
        from lima_eval.report.build import build_report

        build_report(store.root, cfg=cfg, prompts=prompts)
    return result


def warn_contamination(cfg: RunConfig) -> dict | None:
    """Before training: say (even with --no-progress: training on the test set is news) which benchmark prompts
    appear in the training data. Returns the check (None without training data)."""
    found = check_run(cfg, load_prompts(cfg.benchmark))
    if found and found["contaminated"]:
        ids = ", ".join(h["prompt_id"] for h in found["hits"][:10]) + (" ..." if found["contaminated"] > 10 else "")
        print(f"warning: contamination: {found['contaminated']} of {found['prompts']} benchmark prompts appear in the "
              f"training data ({found['ngram']}-word overlap): {ids}; the report gives every rate without them too",
              file=sys.stderr, flush=True)
    return found


def _within_budget(cfg: RunConfig, prompts: list[Prompt], stage: str, spent: float, done: str,
                   use_cache: bool = True) -> float:
    """With `budget_usd`: the estimated spending after the `stage` stages (generate / judge), or a BudgetError
    saying what is done and what budget would let a rerun finish. Estimates are the dry run's (upper bounds)."""
    if cfg.budget_usd is None:
        return spent
    stages = forecast(cfg, prompts, use_cache)
    mine = [s for s in stages if s.stage.startswith(stage)]
    cost = sum(s.cost or 0.0 for s in mine)
    if not spent + cost <= cfg.budget_usd:  # so that a NaN cost stops the run instead of passing

        rest = math.ceil(sum(s.cost or 0.0 for s in stages) * 1e4) / 1e4  # rounded up: enough as printed
        worst = max(mine, key=lambda s: s.cost or 0.0)
        raise BudgetError(f"budget: the {stage} stage would cost about {cost:.4f} USD (estimated; most for "
                          f"'{worst.stage}': {worst.to_do} requests), over the {cfg.budget_usd:g} USD budget "
                          f"with {spent:.4f} spent; done so far: {done}. A rerun with budget_usd >= {rest:.4f} "
                          "would finish (lima-eval run --dry-run shows each stage)")
    return spent + cost


def sft_stage(cfg: RunConfig, show: bool = True) -> None:
    """Fine-tune the run's SFT model unless the finished model of this recipe is already on disk."""
    sft = cfg.sft
    assert sft is not None
    length = f"{sft.max_steps} optimiser steps" if sft.max_steps else f"{sft.epochs} epochs"
    if is_complete(sft):
        header(f"SFT: {sft.name} ({sft.base} on {sft.data}, {length}) is already trained: {sft.out}", show)
        return
    warn_contamination(cfg)
    header(f"SFT: fine-tuning {sft.base} on {sft.data} with LIMA's recipe, {length} -> {sft.out}", show)
    from lima_eval.sft.train import train  # only a run with an unfinished SFT stage trains

    train(sft, show_progress=show)
