"""lima-eval: LIMA-style evaluation of aligned language models (generate, judge pairwise, report).

Importing this package is cheap: torch, transformers and openai load only when a backend is used.
"""

__version__ = "0.1.0"

from lima_eval.errors import LimaEvalError

__all__ = ["LimaEvalError", "__version__"]
