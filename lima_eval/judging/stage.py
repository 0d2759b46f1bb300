"""The judging stage's parts for the commands: the plan of a judge's items, the answers on disk, and a judge
asking about them (asking.py). Whether a judge or a jury (jury.py) judges is the pipeline's choice
(pipeline.judge_stage)."""

from __future__ import annotations

from lima_eval.judging.asking import Answers, Asking, Plan, answers_on_disk, plan

__all__ = ["Answers", "Asking", "Plan", "answers_on_disk", "plan"]
