"""A run folder, opened once: its store, validated config, prompts, answers and id recipes.

Every command that reads or extends an existing run (import-answers, import-human, import-judgments, report,
leaderboard, check) opens it through `Run`, so none re-derives the config, the prompts or the generation ids.
For notebooks, `Run(path)` gives the records and the report's numbers as pandas DataFrames.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lima_eval.benchmarks import load_prompts
from lima_eval.config import Endpoint, JudgeSpec, RunConfig, from_resolved
from lima_eval.errors import ConfigError, MissingExtraError
from lima_eval.records import Generation, Prompt, to_dict
from lima_eval.registry import REPORT_SECTIONS
from lima_eval.store import CONFIG, RunStore

if TYPE_CHECKING:
    import pandas as pd

Answers = dict[tuple[str, str, int], Generation]  # (prompt id, model, turn) -> this config's readable answer


class Run:
    """One run directory. `Run(path)` reads its resolved config; `Run(path, cfg)` uses a config in hand (the
    `run` command, which writes it)."""

    def __init__(self, root: Path | str, config: RunConfig | None = None, prompts: list[Prompt] | None = None):
        self.root = Path(root)
        self.store = RunStore(self.root)
        if config is None:
            if not (self.root / CONFIG).exists():
                raise ConfigError(f"{self.root}: not a lima-eval run directory (no {CONFIG})")
            config = from_resolved(self.store.read_config(), str(self.root / CONFIG))
        self.config = config
        if prompts is not None:  # already loaded by the caller: the cached property returns them
            self.__dict__["prompts"] = prompts

    def __repr__(self) -> str:
        """Cheap (reads nothing): the folder, the config's name, its models and baselines, and its judges."""
        cfg = self.config

        def judge(spec: JudgeSpec) -> str:
            on = f"jury of {len(spec.jury)}" if spec.jury else spec.model
            return f"{spec.name} ({on})" if on else spec.name

        return (f"Run({str(self.root)!r}, name={cfg.name!r}, models={[m.name for m in cfg.models]!r}, "
                f"baselines={cfg.baselines!r}, judges={[judge(j) for j in cfg.all_judges()]!r})")

    @cached_property
    def prompts(self) -> list[Prompt]:
        return load_prompts(self.config.benchmark)

    def generation_id(self, prompt: Prompt, spec: Endpoint, name: str, turn: int = 0) -> str:
        """The id of model `name`'s answer to a prompt's turn in this run (RunConfig.generation_ids)."""
        return self.config.generation_ids(spec, name)(prompt, turn)

    def answers(self, generations: dict[str, Generation] | None = None) -> Answers:
        """(prompt id, model, turn) -> this config's answer, for every answer without an error (pass the
        store's generations to share one read)."""
        gens = self.store.generations() if generations is None else generations
        return answers_on_disk(self.config, self.prompts, gens)

    # --- tables for notebooks ---------------------------------------------------------------------

    def generations(self) -> pd.DataFrame:
        """Every answer on disk, one row per generation record."""
        return _frame(self.store.generations().values())

    def judgments(self) -> pd.DataFrame:
        """Every pairwise judgment on disk (model judges, human labels, imported files), with a `source`
        column: judge, human or imported."""
        parts = [(r, "judge") for r in self.store.judgments().values()]
        parts += [(r, "human") for r in self.store.judgments(human=True).values()]
        parts += [(r, "imported") for r in self.store.imported().values()]
        return _frame([r for r, _ in parts], source=[s for _, s in parts])

    def ratings(self) -> pd.DataFrame:
        """Every absolute rating on disk (model judges and human labels), with a `source` column."""
        parts = [(r, "judge") for r in self.store.ratings().values()]
        parts += [(r, "human") for r in self.store.ratings(human=True).values()]
        return _frame([r for r, _ in parts], source=[s for _, s in parts])

    def summary(self) -> pd.DataFrame:
        """The report's rows (model, baseline, judge, win / tie / loss, rates and their intervals), computed
        from what is on disk as `lima-eval report` computes them."""
        import pandas as pd

        # The report sits above this module: its pairwise section is reached through the section registry, as
        # any plugin's would be, not imported.
        return pd.DataFrame(REPORT_SECTIONS.load("rows").of_run(self))


def answers_on_disk(cfg: RunConfig, prompts: list[Prompt], gens: dict[str, Generation]) -> Answers:
    """(prompt id, model, turn) -> this config's answer, for every answer without an error."""
    out: dict[tuple[str, str, int], Generation] = {}
    for spec in cfg.models:
        gid = cfg.generation_ids(spec)
        for p in prompts:
            for t in range(len(p.user_turns)):
                g = gens.get(gid(p, t))
                if g is not None and not g.error:
                    out[(p.id, spec.name, t)] = g
    return out


def _frame(records: Any, **extra: list[Any]) -> pd.DataFrame:
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingExtraError("pandas") from exc
    rows = [to_dict(r) for r in records]
    frame = pd.DataFrame(rows)
    for key, values in extra.items():
        frame[key] = values
    return frame


__all__ = ["Answers", "Run", "answers_on_disk"]
