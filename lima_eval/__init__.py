"""lima-eval: LIMA-style evaluation of aligned language models (generate, judge pairwise, report).

Importing this package is cheap: torch, transformers and openai load only when a backend is used.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from lima_eval.errors import LimaEvalError

if TYPE_CHECKING:
    from lima_eval.run import Run

__all__ = ["LimaEvalError", "Run", "__version__"]


def __getattr__(name: str) -> Any:
    """`lima_eval.Run` without importing the run machinery (and numpy) on `import lima_eval`."""
    if name == "Run":
        from lima_eval.run import Run

        return Run
    raise AttributeError(f"module 'lima_eval' has no attribute {name!r}")
