"""The judging stage: a judge asks about its items (asking.py); a jury runs each juror through the same and
combines their verdicts (jury.py)."""

from __future__ import annotations

from lima_eval.config import JudgeSpec, RunConfig
from lima_eval.judging.asking import Answers, Asking, Plan, answers_on_disk, one_judge_stage, plan
from lima_eval.judging.jury import jury_stage
from lima_eval.progress import StageCounts
from lima_eval.records import Prompt
from lima_eval.store import RunStore

# The commands' names for the stage's parts (plan, answers_on_disk, Asking), wherever they are defined.
__all__ = ["Asking", "Plan", "answers_on_disk", "judge_stage", "plan"]


def judge_stage(cfg: RunConfig, spec: JudgeSpec, prompts: list[Prompt], store: RunStore, show: bool = True,
                use_cache: bool = True, answers: Answers | None = None) -> tuple[StageCounts, int]:
    """Judge what is not on disk yet; returns the counts and how many items lacked an answer."""
    if spec.jury:
        return jury_stage(cfg, spec, prompts, store, show, use_cache, answers)
    return one_judge_stage(cfg, spec, prompts, store, show, use_cache, answers)
