"""Judge definitions: judges/<name>/judge.yaml (config) + a prompt template with named placeholders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from lima_eval.errors import LimaEvalError, UnknownNameError
from lima_eval.records import content_id
from lima_eval.registry import suggest
from lima_eval.resources import data_dir

PLACEHOLDER = re.compile(r"\{(prompt|answer_a|answer_b)\}")


@dataclass(frozen=True)
class JudgeDefinition:
    name: str
    kind: str
    description: str
    template: str
    parser: str
    system: str | None = None
    reply_prefix: str | None = None  # local backends continue the judge's reply from here (e.g. "Verdict:")

    @property
    def fingerprint(self) -> str:
        """Changes whenever the judge would be asked something different."""
        return content_id("judge-definition", self.kind, self.template, self.parser, self.system, self.reply_prefix)

    def render(self, prefill: bool = False, **values: str) -> list[dict[str, str]]:
        """The chat messages for one item; every placeholder must be filled.

        With prefill, the reply prefix is added as an open assistant message for the backend to continue.
        """
        missing = {m for m in PLACEHOLDER.findall(self.template)} - set(values)
        if missing:
            raise LimaEvalError(f"judge '{self.name}': no value for placeholder(s) {sorted(missing)}")
        user = PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)
        msgs = [{"role": "user", "content": user}]
        if self.system:
            msgs.insert(0, {"role": "system", "content": self.system.strip()})
        if prefill and self.reply_prefix:
            msgs.append({"role": "assistant", "content": self.reply_prefix})
        return msgs


def available() -> dict[str, Path]:
    root = data_dir("judges")
    return {p.parent.name: p.parent for p in sorted(root.glob("*/judge.yaml"))}


def load_definition(name: str) -> JudgeDefinition:
    folders = available()
    if name not in folders:
        raise UnknownNameError(f"unknown judge '{name}'{suggest(name, list(folders))}; known: {', '.join(folders)}")
    folder = folders[name]
    data = yaml.safe_load((folder / "judge.yaml").read_text(encoding="utf-8")) or {}
    template = (folder / data.get("template", "prompt.txt")).read_text(encoding="utf-8")
    used = set(PLACEHOLDER.findall(template))
    if data.get("kind", "pairwise") == "pairwise" and used != {"prompt", "answer_a", "answer_b"}:
        raise LimaEvalError(f"{folder}: a pairwise template needs {{prompt}}, {{answer_a}} and {{answer_b}}")
    return JudgeDefinition(
        name=name, kind=data.get("kind", "pairwise"), description=str(data.get("description", "")).strip(),
        template=template, parser=data.get("parser", name), system=data.get("system"),
        reply_prefix=data.get("reply_prefix"),
    )
