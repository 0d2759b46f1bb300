"""LIMA's fine-tuning recipe as a typed config, its hash (and whether a finished model of it is on disk), and the
two schedules it defines (learning rate, dropout).

Plain data below the run config, which embeds it as the `sft:` section; lima_eval/sft/ trains it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from lima_eval.records import content_id

EOT = "<|eot|>"  # LIMA's end-of-turn token: ends every utterance; generation stops on it


@dataclass
class SFTConfig:
    """Each field defaults to LIMA's recipe (Zhou et al. 2023, section 3 and appendix); each is overridable."""

    base: str = ""  # the pre-trained model: a folder, a Hugging Face id or embedded:NAME
    data: str = "demo"  # "demo", "GAIR/lima" (gated HF dataset), or a JSONL path (conversations / messages)
    out: str = ""  # where the fine-tuned model (and checkpoints) go
    epochs: int = 15
    learning_rate: float = 1e-5  # start of the linear decay, no warmup
    final_learning_rate: float = 1e-6  # reached at the last optimiser step
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    weight_decay: float = 0.1
    batch_size: int = 32  # examples per optimiser step (LIMA used 64 for its smaller 7B runs)
    micro_batch_size: int = 4  # examples per forward pass per process; the rest is gradient accumulation
    max_seq_len: int = 2048  # longer conversations are trimmed
    # Residual dropout rises linearly from 0 at the bottom layer to this at the top. "auto": 0.3 for models
    # of 30B parameters or more, 0.2 below (LIMA used 0.3 for 65B and 0.2 for its 7B model).
    residual_dropout: float | str = "auto"
    max_steps: int | None = None  # stop early (demos and tests); None trains all epochs
    max_examples: int | None = None  # use only the first N conversations
    keep_epochs: list[int] = field(default_factory=lambda: list(range(5, 11)))  # epoch models kept for selection
    dev_max_new_tokens: int = 1024  # answer length cap when generating dev answers for checkpoint selection
    lora: bool = False  # train LoRA adapters (peft) instead of all weights
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    dtype: str = "auto"  # auto: float32 on CPU, bfloat16 on CUDA (weights in fp32 with bf16 autocast)
    # The saved model's dtype: auto keeps the base model's (a bf16 base gives a bf16 model: half the disk).
    save_dtype: str = "auto"
    # A full resumable checkpoint (weights + optimiser state: ~4x the model) at each epoch end, so a killed run
    # resumes; removed once training completes. Off for short demos, which simply start again.
    checkpoints: bool = True
    seed: int = 0


# Settings that change where or how the result is kept, not the trained weights: not part of the recipe hash.
NOT_RECIPE = ("out", "checkpoints", "save_dtype")


def recipe_hash(cfg: SFTConfig) -> str:
    return content_id("sft", {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_RECIPE})


DONE = "lima_sft.json"  # written last: its presence (with the same recipe hash) means the model is complete


def is_complete(cfg: SFTConfig) -> bool:
    """Whether cfg.out holds the finished model of this recipe: read from one small file, no torch import."""
    path = Path(cfg.out) / DONE
    try:
        return bool(json.loads(path.read_text()).get("recipe_hash") == recipe_hash(cfg))
    except (OSError, ValueError):
        return False


def lr_at(step: int, total_steps: int, start: float, end: float) -> float:
    """LIMA's schedule: linear from `start` at the first step to `end` at the last, no warmup."""
    if total_steps <= 1:
        return start
    return start + (end - start) * min(step, total_steps - 1) / (total_steps - 1)


def dropout_schedule(n_layers: int, top: float) -> list[float]:
    """Residual dropout per layer, rising linearly from 0.0 (bottom layer) to `top` (top layer)."""
    if n_layers == 1:
        return [top]
    return [top * i / (n_layers - 1) for i in range(n_layers)]


def resolve_dropout(value: float | str, n_params: int) -> float:
    if value == "auto":
        return 0.3 if n_params >= 30e9 else 0.2
    return float(value)
