"""Run LIMA's recipe with transformers' Trainer: EOT token, assistant-only loss, residual dropout, epoch
checkpoints that resume, LoRA through peft, DDP/FSDP through `accelerate launch`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from lima_eval.embedded import resolve
from lima_eval.errors import ConfigError, LimaEvalError, MissingExtraError, require
from lima_eval.recipe import DONE, EOT, SFTConfig, is_complete, lr_at, recipe_hash, resolve_dropout
from lima_eval.sft.data import CHAT_TEMPLATE, IGNORE, load_conversations, render

log = logging.getLogger(__name__)


def add_eot(tokenizer: Any, model: Any) -> int:
    """Add LIMA's EOT token, resize the embeddings (new row = mean of the others) and stop generation on it."""
    from transformers import AddedToken

    if EOT not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(EOT, special=True, normalized=False)], special_tokens=True)
    eot_id = tokenizer.convert_tokens_to_ids(EOT)
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = model.generation_config.eos_token_id
    eos = [] if eos is None else (list(eos) if isinstance(eos, (list, tuple)) else [eos])
    model.generation_config.eos_token_id = [eot_id] + [e for e in eos if e != eot_id]
    return eot_id


class Collator:
    """Right-pads (ids, labels) to the longest example of the micro-batch."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        ids = [e["input_ids"] + [self.pad_id] * (width - len(e["input_ids"])) for e in examples]
        labels = [e["labels"] + [IGNORE] * (width - len(e["labels"])) for e in examples]
        mask = [[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def build_examples(cfg: SFTConfig, tokenizer: Any, eot_id: int) -> list[dict[str, list[int]]]:
    convs = load_conversations(cfg.data, cfg.max_examples)
    examples, dropped = [], 0
    for turns in convs:
        ids, labels = render(turns, tokenizer, eot_id, cfg.max_seq_len)
        if all(x == IGNORE for x in labels):  # trimmed before the first assistant token: nothing to learn
            dropped += 1
            continue
        examples.append({"input_ids": ids, "labels": labels})
    if dropped:
        log.warning("sft: %d conversation(s) dropped: no assistant token within max_seq_len=%d", dropped,
                    cfg.max_seq_len)
    if not examples:
        raise LimaEvalError("sft: no usable training examples")
    return examples


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def training_arguments(cfg: SFTConfig, use_cuda: bool, show_progress: bool) -> Any:
    from transformers import TrainingArguments

    world = _world_size()
    if cfg.batch_size % (cfg.micro_batch_size * world):
        raise ConfigError(f"sft: batch_size {cfg.batch_size} is not a multiple of micro_batch_size "
                          f"{cfg.micro_batch_size} x {world} process(es)")
    bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and use_cuda)
    return TrainingArguments(
        output_dir=str(Path(cfg.out) / "checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps else -1,
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.batch_size // (cfg.micro_batch_size * world),
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        adam_beta1=cfg.adam_beta1,
        adam_beta2=cfg.adam_beta2,
        warmup_steps=0,
        logging_steps=1,
        save_strategy="epoch" if cfg.checkpoints else "no",
        save_total_limit=1,  # the newest full checkpoint, for resuming; epoch models are kept separately
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=bf16,
        use_cpu=not use_cuda,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,  # one progress line of our own (StepProgress), not the Trainer's dict logs
        ddp_find_unused_parameters=False,
    )


def _make_trainer_class() -> Any:
    import torch
    from transformers import Trainer

    class LimaTrainer(Trainer):
        """Trainer with LIMA's learning-rate schedule: linear from lr to final_lr, no warmup."""

        final_learning_rate: float = 1e-6

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if self.lr_scheduler is None:
                start, end = self.args.learning_rate, self.final_learning_rate
                chosen = optimizer or self.optimizer
                assert chosen is not None  # Trainer creates the optimizer before the scheduler
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                    chosen,
                    lambda step: lr_at(step, num_training_steps, start, end) / start,
                )
            return self.lr_scheduler

    return LimaTrainer


def _epoch_saver(cfg: SFTConfig, tokenizer: Any) -> Any:
    from transformers import TrainerCallback

    class SaveEpochModels(TrainerCallback):
        """Keep the model of each epoch in `keep_epochs` (and the last) for checkpoint selection."""

        def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            epoch = round(state.epoch or 0)
            if state.is_world_process_zero and model is not None and epoch in cfg.keep_epochs:
                target = Path(cfg.out) / "epochs" / f"epoch-{epoch}"
                model.save_pretrained(str(target))
                tokenizer.save_pretrained(str(target))

    return SaveEpochModels()


def load_for_training(cfg: SFTConfig) -> tuple[Any, Any, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(cfg.base)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except OSError as exc:
        raise LimaEvalError(f"sft: cannot load base model '{cfg.base}': {exc}") from exc
    n_params = sum(p.numel() for p in model.parameters())
    return tokenizer, model, resolve_dropout(cfg.residual_dropout, n_params)


def train(cfg: SFTConfig, show_progress: bool = True, callbacks: list[Any] | None = None) -> Path:
    """Fine-tune cfg.base on cfg.data into cfg.out; resumes from the newest checkpoint there."""
    if not cfg.base or not cfg.out:
        raise ConfigError("sft: both base and out are required")
    out = Path(cfg.out)
    if is_complete(cfg):  # checked from files before torch and the Trainer are imported (seconds)
        log.info("sft: %s is already complete for this recipe; nothing to do", out)
        return out
    require("sft", "torch", "transformers", "accelerate")
    import torch
    from transformers.trainer_utils import get_last_checkpoint

    from lima_eval.sft.dropout import ResidualDropout  # imports torch at module level

    save_dtype = _save_dtype(cfg)  # a bad save_dtype is an error now, not after the training it would waste
    tokenizer, model, p_top = load_for_training(cfg)
    eot_id = add_eot(tokenizer, model)
    examples = build_examples(cfg, tokenizer, eot_id)
    dropout = ResidualDropout(model, p_top)
    if cfg.lora:
        model = _with_lora(cfg, model, eot_id)
    use_cuda = torch.cuda.is_available()
    args = training_arguments(cfg, use_cuda, show_progress)
    trainer_cls = _make_trainer_class()
    progress = [_step_progress(cfg)] if show_progress else []
    trainer = trainer_cls(model=model, args=args, train_dataset=examples,
                          data_collator=Collator(tokenizer.pad_token_id),
                          callbacks=[_epoch_saver(cfg, tokenizer)] + progress + list(callbacks or []))
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for quiet in (PrinterCallback, ProgressCallback):  # their per-step dicts: replaced by one progress line
        trainer.remove_callback(quiet)
    trainer.final_learning_rate = cfg.final_learning_rate
    out.mkdir(parents=True, exist_ok=True)
    if trainer.is_world_process_zero():
        (out / "sft_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg) | {
            "residual_dropout_resolved": p_top, "residual_dropout_per_layer": dropout.probabilities,
            "eot_token": EOT, "world_size": _world_size()}, sort_keys=False))
    last = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
    if last:
        log.info("sft: resuming from %s", last)
    # Trainer prints its logs to stdout; stdout is for data (the CLI prints the model path there).
    with contextlib.redirect_stdout(sys.stderr):
        result = trainer.train(resume_from_checkpoint=last)
    if trainer.state.global_step < trainer.state.max_steps:  # stopped early by a callback: not complete
        return out
    dropout.remove()
    if save_dtype is not None and not cfg.lora and _world_size() == 1:
        model.to(save_dtype)  # training is over: keep the base model's precision on disk
    if trainer.is_world_process_zero():
        trainer.save_model(str(out))  # full weights, or the adapter under LoRA
        tokenizer.save_pretrained(str(out))
        base = model.get_base_model() if cfg.lora else model
        base.generation_config.save_pretrained(str(out))  # eos includes EOT: generation stops there
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        (out / DONE).write_text(json.dumps({
            "recipe_hash": recipe_hash(cfg), "steps": trainer.state.global_step, "epochs": cfg.epochs,
            "train_loss": result.training_loss, "losses": losses, "lora": cfg.lora,
        }, indent=2))
        # The resumable checkpoint (optimiser state: several times the model) is not needed any more.
        shutil.rmtree(Path(args.output_dir), ignore_errors=True)
    return out


def _save_dtype(cfg: SFTConfig) -> Any:
    """The torch dtype to save in: cfg.save_dtype, or for 'auto' the base model's own (from its config)."""
    import torch

    name = cfg.save_dtype
    if name == "auto":
        try:
            data = json.loads((Path(resolve(cfg.base)) / "config.json").read_text())
        except (OSError, ValueError):  # a hub id: transformers has it cached; its dtype is not needed here
            return None
        name = str(data.get("dtype") or data.get("torch_dtype") or "float32")
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise ConfigError(f"sft: save_dtype '{cfg.save_dtype}' is not one of auto, {', '.join(dtypes)}")
    return dtypes[name]


def _step_progress(cfg: SFTConfig) -> Any:
    from tqdm import tqdm
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):
        """One progress line for the whole run: optimiser steps, with the latest loss and learning rate."""

        bar: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=f"SFT {Path(cfg.out).name}",
                                unit="step", file=sys.stderr, dynamic_ncols=True)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if self.bar is not None and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs.get('learning_rate', 0):.2e}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    return StepProgress()


def _with_lora(cfg: SFTConfig, model: Any, eot_id: int) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise MissingExtraError("peft", extra="sft") from exc
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, task_type="CAUSAL_LM",
                      target_modules="all-linear", trainable_token_indices=[eot_id])
    return get_peft_model(model, lora)
