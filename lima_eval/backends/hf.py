"""transformers `generate`, batched with left padding, chat template applied, LIMA's sampling, seeded."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lima_eval.backends.base import Backend, Completion, LogprobRequest, Messages, trim_at_stops
from lima_eval.backends.render import PromptRenderer
from lima_eval.config import Endpoint, identity_option
from lima_eval.embedded import resolve
from lima_eval.errors import BackendError, MissingExtraError, require, require_installed

log = logging.getLogger(__name__)
# A prompt start shared by every row of a batch is computed once when it is at least this long (shorter ones
# cost less than the copy of their cache).
SHARED_PREFIX_MIN = 64


@dataclass
class HFOptions:
    """Options of the hf backend."""

    dtype: str = identity_option("auto")  # auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16 | float16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 8  # prompts per generate() call (at most)
    max_batch_tokens: int | None = None  # cap on rows x (longest prompt + max_new_tokens) per call


class HFBackend(Backend):
    """Local model through transformers. `spec.model` is a folder, a Hugging Face id or embedded:NAME."""

    Options = HFOptions
    options: HFOptions
    supports_prefill = True
    supports_logprobs = True

    @classmethod
    def preflight(cls, spec: Endpoint) -> None:
        require_installed("hf", "torch", "transformers")  # before a run pays for any other model's answers

    def __init__(self, spec: Endpoint, seed: int = 0):
        super().__init__(spec, seed)
        require("hf", "torch", "transformers")
        import torch
        from transformers import AutoTokenizer

        self._torch = torch
        path = resolve(spec.model)
        opts = self.options
        device = opts.device if opts.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = self._dtype(opts.dtype, device)
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(path)
            self.model: Any = self._load(path, dtype).to(device).eval()
        except OSError as exc:
            raise BackendError(f"cannot load model '{spec.model}': {exc}") from exc
        self.device = device
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.renderer = PromptRenderer(self.tokenizer, spec)
        self.prompt_format = self.renderer.format
        self._prefix: tuple[tuple[int, ...], Any] | None = None  # the last shared prompt start and its cache

    @staticmethod
    def _load(path: str, dtype: Any) -> Any:
        """Full weights, or a LoRA adapter folder (the SFT stage with lora: true) merged into its base."""

        from transformers import AutoModelForCausalLM

        if (Path(path) / "adapter_config.json").exists():
            try:
                from peft import AutoPeftModelForCausalLM
            except ImportError as exc:
                raise MissingExtraError("peft", extra="sft") from exc
            return AutoPeftModelForCausalLM.from_pretrained(path, dtype=dtype).merge_and_unload()
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)

    def _dtype(self, name: str, device: str) -> Any:
        torch = self._torch
        if name == "auto":
            # bf16 matmuls are slower than fp32 on most CPUs; on GPUs bf16 is the norm.
            return torch.float32 if device == "cpu" else torch.bfloat16
        try:
            return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
        except KeyError:
            raise BackendError(f"dtype '{name}' is not one of auto, float32, bfloat16, float16") from None

    def render(self, messages: Messages) -> str:
        return self.renderer.text(messages)

    @property
    def chunk_size(self) -> int:
        # Hand over several batches at once so they can be grouped by length (less padding).
        return max(1, self.options.batch_size) * 4

    def batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped longest-first into batches of similar length, within batch_size and max_batch_tokens."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        cap = self.options.max_batch_tokens
        out: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            width = lengths[cur[0]] if cur else lengths[i]  # the first (longest) row sets the padded width
            rows = len(cur) + 1
            too_many = rows > max(1, self.options.batch_size)
            too_big = cap is not None and cur and rows * (width + self.spec.sampling.max_new_tokens) > cap
            if too_many or too_big:
                out.append(cur)
                cur = []
            cur.append(i)
        return out + ([cur] if cur else [])

    def complete(self, requests: list[Messages], logprobs: LogprobRequest | None = None) -> list[Completion]:
        # Tokenised once: the lengths group the batches, the ids are padded per batch.
        ids = [self.renderer.ids(m) for m in requests]
        results: list[Completion | None] = [None] * len(ids)
        for batch in self.batches([len(x) for x in ids]):
            for i, c in zip(batch, self._generate_batch([ids[i] for i in batch], logprobs)):
                results[i] = c
        return [c for c in results if c is not None]

    def candidate_ids(self, candidates: tuple[str, ...]) -> list[int]:
        """First token of each candidate, with and without a leading space (how it follows "Verdict:")."""
        out = []
        for c in candidates:
            for variant in (c, " " + c):
                toks = self.tokenizer.encode(variant, add_special_tokens=False)
                if toks:
                    out.append(int(toks[0]))
        return list(dict.fromkeys(out))

    def _steps(self, logits: Any, row: int, n: int, gen: list[int], top_k: int, extra: list[int]
               ) -> list[tuple[str, dict]]:
        """Per generated token: its text and the log-probabilities of the top-k and of the `extra` tokens
        (the answer options' first tokens)."""
        torch, tok = self._torch, self.tokenizer
        steps = []
        for t in range(n):
            lp = torch.log_softmax(logits[t][row].float(), dim=-1)
            ids = list(dict.fromkeys(torch.topk(lp, k=max(1, top_k)).indices.tolist() + extra + [gen[t]]))
            alts: dict[str, float] = {}
            for tid, value in zip(ids, lp[ids].tolist()):  # one gather, not one device read per token
                key = str(tok.decode([tid]))  # tokens that decode alike (rare) are one alternative
                alts[key] = value if key not in alts else _logaddexp(alts[key], value)
            steps.append((str(tok.decode([gen[t]])), alts))
        return steps

    def _shared_prefix(self, ids: list[list[int]]) -> tuple[dict[str, Any], Any]:
        """The batch's inputs, and the key/value cache of the prompt start every row shares (None if that is
        short). A judge's prompts share a long start (system prompt and instructions, ~140 of ~350 tokens in
        the quickstart): it is computed once, not once per row. The rows' own parts are left-padded after it,
        so each row sees the same tokens at the same positions as alone (the mask skips the padding)."""
        torch, tok = self._torch, self.tokenizer
        shared = _common_prefix(ids)
        if len(ids) < 2 or shared < SHARED_PREFIX_MIN:
            padded = tok.pad({"input_ids": ids}, return_tensors="pt")  # left padding, attention mask
            return {k: v.to(self.device) for k, v in padded.items()}, None
        prefix = tuple(ids[0][:shared])
        if self._prefix is None or self._prefix[0] != prefix:
            with torch.inference_mode():
                out = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True)
            self._prefix = (prefix, out.past_key_values)
        cache = copy.deepcopy(self._prefix[1])  # generate() appends to it; the next batch starts from the prefix
        cache.batch_repeat_interleave(len(ids))
        width = max(len(x) for x in ids) - shared
        rows = [list(prefix) + [tok.pad_token_id] * (width - len(x) + shared) + x[shared:] for x in ids]
        mask = [[1] * shared + [0] * (width - len(x) + shared) + [1] * (len(x) - shared) for x in ids]
        return {"input_ids": torch.tensor(rows, device=self.device),
                "attention_mask": torch.tensor(mask, device=self.device)}, cache

    def _generate_batch(self, ids: list[list[int]], logprobs: LogprobRequest | None = None) -> list[Completion]:
        torch, s, tok = self._torch, self.spec.sampling, self.tokenizer
        enc, cache = self._shared_prefix(ids)
        kwargs: dict[str, Any] = {"max_new_tokens": s.max_new_tokens, "pad_token_id": tok.pad_token_id}
        if cache is not None:
            kwargs["past_key_values"] = cache
        if s.greedy:
            kwargs["do_sample"] = False
        else:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        if s.repetition_penalty and s.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = s.repetition_penalty
        stops = self.renderer.stops()
        if stops:
            kwargs.update(stop_strings=stops, tokenizer=tok)
        extra: list[int] = []
        if logprobs is not None:
            kwargs.update(output_logits=True, return_dict_in_generate=True)
            extra = self.candidate_ids(logprobs.candidates)
        if self.on_progress is not None:
            kwargs["streamer"] = _StepCounter(self.on_progress, len(ids), s.max_new_tokens)
        torch.manual_seed(self.seed)
        self.calls += len(ids)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        step_logits = None
        if logprobs is not None:
            step_logits, out = out.logits, out.sequences  # raw logits, one (batch, vocab) tensor per step
        prompt_len = enc["input_ids"].shape[1]
        eos = {t for t in _as_list(self.model.generation_config.eos_token_id) + [tok.eos_token_id] if t is not None}
        results = []
        for r, (row, mask) in enumerate(zip(out[:, prompt_len:].tolist(), enc["attention_mask"].tolist())):
            ids = [t for t in row if t != tok.pad_token_id or t in eos]
            stopped_eos = any(t in eos for t in ids)
            if stopped_eos:
                ids = ids[: next(i for i, t in enumerate(ids) if t in eos)]
            steps = None
            if step_logits is not None and logprobs is not None:
                steps = self._steps(step_logits, r, min(max(1, len(ids)), len(step_logits)), row, logprobs.top, extra)
            text = str(tok.decode(ids, skip_special_tokens=True))
            text, stopped_str = trim_at_stops(text, stops)
            results.append(Completion(
                text=text.strip(),
                finish_reason="stop" if (stopped_eos or stopped_str) else "length",
                # The end token counts as generated (as in vLLM and OpenAI-compatible servers).
                usage={"prompt_tokens": int(sum(mask)), "completion_tokens": len(ids) + int(stopped_eos)},
                logprobs=steps,
            ))
        return results

    def close(self) -> None:
        self._prefix = None
        self.model = None
        self.tokenizer = None
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()


class _StepCounter:
    """A generate() streamer that reports each decoding step as rows / max_new_tokens of a request, so the
    stage's bar moves during one large batch; whatever is left (rows that stopped early) is reported at the end."""

    def __init__(self, report: Any, rows: int, max_new_tokens: int):
        self.report, self.rows, self.steps = report, rows, max(1, max_new_tokens)
        self.done, self.prompt_seen = 0.0, False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # the first call carries the prompt, not a generated token
            self.prompt_seen = True
            return
        step = min(self.rows / self.steps, self.rows - self.done)
        if step > 0:
            self.done += step
            self.report(step)

    def end(self) -> None:
        if self.rows - self.done > 1e-9:
            self.report(self.rows - self.done)
            self.done = float(self.rows)


def _common_prefix(ids: list[list[int]]) -> int:
    """How many leading tokens every row shares, leaving each row at least one token of its own."""
    n = min(len(x) for x in ids) - 1
    first = ids[0]
    for row in ids[1:]:
        i = 0
        while i < n and row[i] == first[i]:
            i += 1
        n = i
    return max(0, n)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _logaddexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) without overflow."""
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))
