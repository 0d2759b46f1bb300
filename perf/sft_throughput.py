"""SFT stage (transformers Trainer) vs a plain PyTorch loop: same model, data, batch, precision; one JSON line.

    python perf/sft_throughput.py                       # CPU: SmolLM2-135M, batch 4 x 128 tokens
    python perf/sft_throughput.py --shape 1b --batch 32 --micro 8 --seq-len 2048   # GPU: a ~1B Llama, random init

Both loops see examples of exactly --seq-len tokens, so tokens/s = steps x batch x seq_len / time. The first
--warmup steps of each are not timed. On CUDA the script also measures the bf16 matmul peak in the same run
and reports MFU against it (and against the 989 TFLOP/s H100/H200 datasheet figure).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lima_eval.recipe import SFTConfig
from lima_eval.sft.data import load_conversations
from perf.shapes import build_1b


def long_conversations(n: int) -> list[dict]:
    """Multi-turn conversations made by chaining demo exchanges, long enough to fill any seq_len."""
    demo = [t for conv in load_conversations("demo") for t in conv]
    out = []
    for i in range(n):
        turns = [demo[(i * 7 + j) % len(demo)] for j in range(200)]
        out.append({"conversations": turns[: len(turns) // 2 * 2]})
    return out


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_stage(cfg: SFTConfig, warmup: int) -> float:
    from transformers import TrainerCallback

    from lima_eval.sft.train import train

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_step_begin(self, *a, **k):  # type: ignore[no-untyped-def]
            sync()
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):  # type: ignore[no-untyped-def]
            sync()
            self.times.append(time.perf_counter() - self.start)

    timer = Timer()
    train(cfg, show_progress=False, callbacks=[timer])
    return sum(timer.times[warmup:])


def run_plain(cfg: SFTConfig, steps: int, warmup: int) -> float:
    """The same work by hand: micro-batches, accumulation, clipping, AdamW, LIMA's schedule."""
    from lima_eval.recipe import lr_at
    from lima_eval.sft.dropout import ResidualDropout
    from lima_eval.sft.train import Collator, add_eot, build_examples, load_for_training

    cuda = torch.cuda.is_available()
    tok, model, p_top = load_for_training(cfg)
    eot = add_eot(tok, model)
    examples = build_examples(cfg, tok, eot)
    ResidualDropout(model, p_top)
    model.to("cuda" if cuda else "cpu").train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), fused=cuda)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, steps, cfg.learning_rate, cfg.final_learning_rate)
                                              / cfg.learning_rate)
    collate = Collator(tok.pad_token_id)
    accum = cfg.batch_size // cfg.micro_batch_size
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(examples), generator=g).tolist()
    total, i = 0.0, 0
    for step in range(steps):
        sync()
        start = time.perf_counter()
        for _ in range(accum):
            batch = [examples[order[(i + k) % len(order)]] for k in range(cfg.micro_batch_size)]
            i += cfg.micro_batch_size
            inputs = {k: v.to(model.device) for k, v in collate(batch).items()}
            with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
                loss = model(**inputs).loss / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if step >= warmup:
            total += time.perf_counter() - start
    return total


def matmul_peak() -> float:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync()
    start, n = time.perf_counter(), 30
    for _ in range(n):
        a @ b
    sync()
    return 2 * 8192**3 * n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--shape", choices=["1b"], default=None, help="build a random-init model of this shape")
    ap.add_argument("--tokenizer", default="embedded:tiny-random", help="tokenizer for --shape")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--micro", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    args = ap.parse_args()

    from lima_eval.embedded import resolve

    tmp = Path(tempfile.mkdtemp(prefix="lima-perf-"))
    model = build_1b(tmp / "model", resolve(args.tokenizer)) if args.shape else resolve(args.model)
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in long_conversations(args.steps * args.batch)))
    cfg = SFTConfig(base=model, data=str(data), out=str(tmp / "out"), max_steps=args.steps, batch_size=args.batch,
                    micro_batch_size=args.micro, max_seq_len=args.seq_len, keep_epochs=[])
    tokens = (args.steps - args.warmup) * args.batch * args.seq_len
    stage_s = run_stage(cfg, args.warmup)
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    plain_s = run_plain(cfg, args.steps, args.warmup)
    result = {
        "model": args.shape or args.model,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "batch": args.batch, "micro_batch": args.micro, "seq_len": args.seq_len,
        "timed_steps": args.steps - args.warmup,
        "sft_tokens_per_s": round(tokens / stage_s, 1), "plain_tokens_per_s": round(tokens / plain_s, 1),
        "ratio": round(plain_s / stage_s, 3),
    }
    if torch.cuda.is_available():
        from transformers import AutoConfig

        c = AutoConfig.from_pretrained(model)
        n = sum(p.numel() for p in __import__("transformers").AutoModelForCausalLM.from_config(c).parameters())
        n_matmul = n - (0 if c.tie_word_embeddings else c.vocab_size * c.hidden_size)
        flops_per_token = 6 * n_matmul + 12 * c.num_hidden_layers * c.hidden_size * args.seq_len
        peak = matmul_peak()
        result |= {"params": n, "peak_tflops_measured": round(peak / 1e12, 1),
                   "mfu_sft": round(result["sft_tokens_per_s"] * flops_per_token / peak, 3),
                   "mfu_plain": round(result["plain_tokens_per_s"] * flops_per_token / peak, 3),
                   "mfu_sft_vs_989": round(result["sft_tokens_per_s"] * flops_per_token / 989e12, 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
