"""The SFT recipe's former home, kept so `from lima_eval.sft.recipe import SFTConfig` keeps working: the recipe
lives in lima_eval/recipe.py now, below the run config that embeds it (docs/architecture.md)."""

from lima_eval.recipe import EOT, SFTConfig, dropout_schedule, lr_at, recipe_hash, resolve_dropout

__all__ = ["EOT", "SFTConfig", "dropout_schedule", "lr_at", "recipe_hash", "resolve_dropout"]
