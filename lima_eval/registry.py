"""Name -> lazy "module:attr" targets, extended by entry points; unknown names get "did you mean"."""

from __future__ import annotations

import difflib
import functools
import importlib
from typing import Any

from lima_eval.errors import UnknownNameError


class Registry:
    """The names of one entry point group (built-ins and plugins alike), whose targets are imported only when
    looked up."""

    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self._found: dict[str, str] | None = None

    def names(self) -> list[str]:
        return sorted(self._entry_points())

    def _entry_points(self) -> dict[str, str]:
        """The group's entry points."""
        if self._found is None:
            self._found = _lima_eval_entry_points().get(self.group, {})
        return self._found

    def target(self, name: str) -> str:
        """The "module:attr" a name points at."""
        if name in self._entry_points():
            return self._entry_points()[name]
        known = self.names()
        hint = suggest(name, known).strip().strip("()")
        raise UnknownNameError(f"unknown {self.kind} '{name}': {hint + ' ' if hint else ''}known: "
                               f"{', '.join(known) or '(none)'}")

    def load(self, name: str) -> Any:
        module, _, attr = self.target(name).partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
        return obj


@functools.cache
def _lima_eval_entry_points() -> dict[str, dict[str, str]]:
    """Every lima_eval.* entry point group, name -> target: read once per process for all registries, as reading
    them scans every installed package's metadata."""
    from importlib.metadata import entry_points  # stdlib, but 40 ms to import: only when a registry is read

    found = entry_points()  # one scan; select() and groups read it without scanning again (Python 3.11 and later)
    return {group: {ep.name: ep.value for ep in found.select(group=group)} for group in found.groups
            if group.startswith("lima_eval.")}


def suggest(name: str, known: list[str]) -> str:
    """A 'did you mean' suffix for an unknown name, or ''."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


BACKENDS = Registry("backend", group="lima_eval.backends")
# Verdict parsers: text -> (option or None, problem or None); a judge.yaml names one with `parser:`.
PARSERS = Registry("verdict parser", group="lima_eval.parsers")
# Judges are folders (judge.yaml + prompt template); a plugin's target is such a folder or a function returning one.
JUDGES = Registry("judge", group="lima_eval.judges")
# Kinds of judges (pairwise, rating, ...): JudgeKind subclasses that a judge.yaml names with `kind:`.
JUDGE_KINDS = Registry("judge kind", group="lima_eval.judge_kinds")
# Report sections (lima_eval.report.sections.Section): a report's parts, each its numbers and their renderings.
REPORT_SECTIONS = Registry("report section", group="lima_eval.report_sections")
# Kinds of `lima-eval check` rules: CheckRule subclasses (lima_eval.check_rules), named by their key in a
# rules file (min_win_rate, max_drop, ...).
CHECK_RULES = Registry("check rule", group="lima_eval.check_rules")
# Kinds of imported files (lima_eval.judging.formats.ImportFormat): answers, judgments, gold sets and human labels,
# each named `<family>.<name>` (answers.alpaca-eval, judgments.pandalm, ...).
IMPORT_FORMATS = Registry("import format", group="lima_eval.import_formats")
# Prompt sets beyond the shipped benchmarks/ folders: a plugin's target is a folder holding benchmark.yaml (and
# its data), or a function returning one.
BENCHMARKS = Registry("benchmark", group="lima_eval.benchmarks")
# Rating scales (lima_eval.scales.Scale): what a rating's `scale` feeds in the report and how it is drawn.
SCALES = Registry("rating scale", group="lima_eval.scales")
