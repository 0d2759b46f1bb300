"""One error hierarchy; the CLI turns these into one-line messages and their exit code (1 unless a class says
otherwise: `lima-eval check` uses 2 for input it cannot use)."""

from __future__ import annotations

import importlib
import importlib.util


class LimaEvalError(Exception):
    """Base class for every error lima-eval reports to a user."""

    exit_code = 1


class ConfigError(LimaEvalError):
    """The run config (YAML or --set) is wrong."""


class InputError(LimaEvalError):
    """A user-supplied file is wrong; the message names the file, the row/line and the field."""

    def __init__(self, path: object, message: str, line: int | None = None, field: str | None = None):
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.field = path, line, field


class UnknownNameError(LimaEvalError):
    """A backend, judge or benchmark name that is not registered."""


class MissingExtraError(LimaEvalError):
    """An optional dependency is not installed; the message says what to pip install."""

    def __init__(self, module: str, extra: str | None = None, hint: str | None = None):
        how = hint or (f"pip install 'lima-eval[{extra}]'" if extra else f"pip install {module}")
        super().__init__(f"the '{module}' package is needed here but is not installed: {how}")


def require(extra: str, *modules: str) -> None:
    """Import `modules` (the caller is about to use them) or say which extra to install, in one line."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtraError(name, extra=extra) from exc


def require_installed(extra: str, *modules: str) -> None:
    """Like require, without importing them: for preflight checks, which must stay fast on a no-op rerun."""
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtraError(name, extra=extra)


class BackendError(LimaEvalError):
    """A model backend could not be started or failed as a whole (not one request)."""


class MissingKeyError(BackendError):
    """An API backend's key is not in the environment variable that should hold it (`env`). A dry run, which
    sends nothing, goes on and says so; a real run stops before it writes or pays for anything."""

    def __init__(self, message: str, env: str):
        super().__init__(message)
        self.env = env


class BudgetError(LimaEvalError):
    """A stage would take the run over its `budget_usd`; nothing of that stage was paid for."""


class RunLockedError(LimaEvalError):
    """Another process is writing to the run folder (one writer per run)."""


class StoreError(LimaEvalError):
    """A results directory is unreadable or belongs to a different run."""


class JudgeDefinitionError(LimaEvalError):
    """A judge folder whose config or template is wrong."""


class HumanImportError(LimaEvalError):
    """A CSV with bad rows: nothing was imported. Lists every problem, one per line."""

    def __init__(self, path: object, problems: list[str]):
        self.problems = problems
        head = (f"{path}: {len(problems)} bad row(s); nothing imported "
                "(fix them, or pass --skip-bad-rows to import the good rows)")
        super().__init__("\n".join([head] + [f"  {p}" for p in problems]))


class CheckInputError(LimaEvalError):
    """The runs or rules of `lima-eval check` cannot be checked (no shared prompts, unknown model or judge, bad
    rules file)."""

    exit_code = 2

