"""Generation throughput: the vllm and hf backends against raw vllm.LLM.generate and a plain batched
model.generate loop, same prompts, same sampling, same process. Prints one JSON line.

    python perf/generate_throughput.py [--model embedded:smollm2-135m-instruct] [--prompts 32] [--max-new 128]

Completion tokens are counted from what each path returned; the raw paths reuse the backends' own engines
(one vLLM engine, one transformers model), so only the lima-eval layers differ.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8, help="hf batch size (both hf paths)")
    ap.add_argument("--skip-vllm", action="store_true")
    ap.add_argument("--shape", choices=["1b"], default=None, help="a random-init model of this shape instead")
    ap.add_argument("--tokenizer", default="embedded:tiny-random", help="tokenizer for --shape")
    args = ap.parse_args()

    import torch

    from lima_eval.backends.base import open_backend
    from lima_eval.benchmarks import load_prompts
    from lima_eval.config import BenchmarkSpec, Endpoint, Sampling

    if args.shape:
        import tempfile

        from lima_eval.embedded import resolve
        from perf.shapes import build_1b

        args.model = build_1b(Path(tempfile.mkdtemp(prefix="lima-perf-")) / "model", resolve(args.tokenizer))
    demo = load_prompts(BenchmarkSpec(name="demo"))
    texts = [demo[i % len(demo)].text + ("" if i < len(demo) else " Please answer briefly.")
             for i in range(args.prompts)]
    messages = [[{"role": "user", "content": t}] for t in texts]
    sampling = Sampling(max_new_tokens=args.max_new)  # LIMA's: T 0.7, top-p 0.9, repetition penalty 1.2
    result: dict = {"model": args.shape or args.model, "prompts": args.prompts, "max_new_tokens": args.max_new,
                    "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}

    def timed(fn):  # type: ignore[no-untyped-def]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        tokens = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return tokens / (time.perf_counter() - start)

    with open_backend(Endpoint.make(backend="hf", model=args.model, sampling=sampling, batch_size=args.batch)) as hf:
        tok, model = hf.tokenizer, hf.model

        def raw_hf() -> int:
            n = 0
            for start in range(0, len(messages), args.batch):
                batch = [hf.render(m) for m in messages[start:start + args.batch]]
                enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
                torch.manual_seed(0)
                with torch.inference_mode():
                    out = model.generate(**enc, max_new_tokens=args.max_new, do_sample=True, temperature=0.7,
                                         top_p=0.9, repetition_penalty=1.2, pad_token_id=tok.pad_token_id)
                new = out[:, enc["input_ids"].shape[1]:]
                n += int((new != tok.pad_token_id).sum()) + int((new == tok.eos_token_id).any(dim=1).sum())
            return n

        def backend_hf() -> int:
            n = 0
            for start in range(0, len(messages), hf.chunk_size):
                n += sum(c.usage["completion_tokens"] for c in hf.generate(messages[start:start + hf.chunk_size]))
            return n

        # Warm-up, not timed: on CUDA at the full batch shape (kernel selection, allocator), else briefly.
        hf.generate(messages[: args.batch] if torch.cuda.is_available() else messages[:2])
        result["hf_raw_tokens_per_s"] = round(timed(raw_hf), 1)
        print(f"hf raw: {result['hf_raw_tokens_per_s']} tok/s", file=sys.stderr, flush=True)
        result["hf_tokens_per_s"] = round(timed(backend_hf), 1)
        print(f"hf backend: {result['hf_tokens_per_s']} tok/s", file=sys.stderr, flush=True)
    result["hf_vs_raw"] = round(result["hf_tokens_per_s"] / result["hf_raw_tokens_per_s"], 3)

    if not args.skip_vllm:
        with open_backend(Endpoint(backend="vllm", model=args.model, sampling=sampling)) as vb:
            ids = [{"prompt_token_ids": vb.renderer.ids(m)} for m in messages]
            params = vb.sampling_params()

            def raw_vllm() -> int:
                outs = vb.llm.generate(ids, params, use_tqdm=False)
                return sum(len(o.outputs[0].token_ids) for o in outs)

            def backend_vllm() -> int:
                return sum(c.usage["completion_tokens"] for c in vb.generate(messages))

            raw_vllm()  # warm-up (first-call allocations), not timed
            print("vllm warm", file=sys.stderr, flush=True)
            result["vllm_raw_tokens_per_s"] = round(timed(raw_vllm), 1)
            result["vllm_tokens_per_s"] = round(timed(backend_vllm), 1)
        result["vllm_vs_raw"] = round(result["vllm_tokens_per_s"] / result["vllm_raw_tokens_per_s"], 3)
        result["vllm_vs_hf"] = round(result["vllm_tokens_per_s"] / result["hf_tokens_per_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
