import pytest

from lima_eval.backends.base import open_backend, plain_prompt, trim_at_stops
from lima_eval.config import Endpoint, Sampling
from lima_eval.errors import BackendError

MSG = [{"role": "user", "content": "Name a colour."}]


@pytest.mark.parametrize("text,stops,expected", [
    ("red\nUser: more", ["\nUser:"], ("red", True)),
    ("red and blue", ["\nUser:"], ("red and blue", False)),
    ("a STOP b END", ["END", "STOP"], ("a ", True)),
    ("", [], ("", False)),
])
def test_trim_at_stops(text, stops, expected):
    assert trim_at_stops(text, stops) == expected


def test_plain_prompt_ends_open_for_the_assistant():
    assert plain_prompt(MSG) == "User: Name a colour.\n\nAssistant:"
    assert plain_prompt(MSG + [{"role": "assistant", "content": "Verdict:"}]).endswith("Assistant: Verdict:")


@pytest.fixture(scope="module")
def greedy():
    with open_backend(Endpoint(model="embedded:tiny-random", sampling=Sampling(temperature=0, max_new_tokens=5)),
                      seed=1) as backend:
        yield backend


def test_chat_template_and_reply_prefix(greedy):
    assert greedy.prompt_format == "chat"
    rendered = greedy.render(MSG)
    assert "<|im_start|>user\nName a colour.<|im_end|>" in rendered and rendered.endswith("<|im_start|>assistant\n")
    continued = greedy.render(MSG + [{"role": "assistant", "content": "Verdict:"}])
    assert continued.endswith("<|im_start|>assistant\nVerdict:")


def test_greedy_is_deterministic_and_batched_like_single(greedy):
    batch = greedy.generate([MSG, [{"role": "user", "content": "A much longer question about the weather?"}]])
    single = greedy.generate([MSG])
    assert batch[0].text == single[0].text  # left padding does not change the answer
    assert all(c.usage["completion_tokens"] <= 5 for c in batch)
    assert batch[0].finish_reason in ("stop", "length")


def test_sampling_is_seeded():
    spec = Endpoint(model="embedded:tiny-random", sampling=Sampling(max_new_tokens=8))
    with open_backend(spec, seed=7) as a, open_backend(spec, seed=7) as b, open_backend(spec, seed=8) as c:
        texts = [x.generate([MSG] * 3) for x in (a, b, c)]
    assert [t.text for t in texts[0]] == [t.text for t in texts[1]]
    assert [t.text for t in texts[0]] != [t.text for t in texts[2]]


def test_bad_settings_are_clear_errors():
    with pytest.raises(BackendError, match="dtype 'fp8'"):
        open_backend(Endpoint.make(model="embedded:tiny-random", dtype="fp8"))
    with pytest.raises(BackendError, match="cannot load model"):
        open_backend(Endpoint(model="/nonexistent/model/folder"))


@pytest.mark.parametrize("lengths,batch_size,cap,new,expected", [
    ([5, 50, 10, 40], 2, None, 8, [[1, 3], [2, 0]]),  # longest first, similar lengths together
    ([5, 50, 10, 40], 8, 100, 8, [[1], [3, 2], [0]]),  # 2 x (50 + 8) > 100; 3 x (40 + 8) > 100
    ([7, 7, 7], 8, None, 8, [[0, 1, 2]]),
    ([300], 4, 10, 8, [[0]]),  # a single row larger than the cap still runs, alone
])
def test_batches_by_length_and_token_cap(lengths, batch_size, cap, new, expected):
    from lima_eval.backends.hf import HFBackend, HFOptions

    backend = HFBackend.__new__(HFBackend)  # batching is pure: no model needed
    backend.spec = Endpoint(sampling=Sampling(max_new_tokens=new))
    backend.options = HFOptions(batch_size=batch_size, max_batch_tokens=cap)
    assert backend.batches(lengths) == expected


def test_order_is_restored_after_length_grouping(greedy):
    prompts = [[{"role": "user", "content": "x " * n}] for n in (3, 40, 1, 20, 9)]
    together = greedy.generate(prompts)
    alone = [greedy.generate([p])[0] for p in prompts]
    assert [c.text for c in together] == [c.text for c in alone]


def _tokenizer(expects_bos: bool, template: str | None):
    """The tiny model's tokenizer, set to expect BOS (as Gemma's does) or not, with a given chat template
    (its own ChatML one is not used: there the turn marker is this tokenizer's BOS token)."""
    from transformers import AutoTokenizer

    from lima_eval.embedded import resolve

    tok = AutoTokenizer.from_pretrained(resolve("embedded:tiny-random"))
    tok.add_bos_token = expects_bos
    tok.chat_template = template
    return tok


@pytest.mark.parametrize("expects_bos,template,fmt,n_bos", [
    (True, None, "plain", 1),         # a base model in the plain format: BOS prepended (Gemma 3 base)
    (True, None, "auto", 1),          # auto falls back to plain without a template: the same
    (False, None, "plain", 0),        # a model that wants no BOS gets none
    (True, "nobos", "chat", 1),       # a template that writes no BOS: the model's expectation adds one
    (False, "nobos", "chat", 0),      # ... and a model that wants none gets none
    (True, "sft", "chat", 1),         # LIMA's SFT template writes {{ bos_token }}: never doubled
    (False, "sft", "chat", 1),        # ... and keeps it even when the tokenizer would not add one
])
def test_bos_is_added_exactly_once_when_the_model_expects_it(expects_bos, template, fmt, n_bos):
    from lima_eval.backends.render import PromptRenderer
    from lima_eval.sft.data import CHAT_TEMPLATE

    nobos = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    tok = _tokenizer(expects_bos, {"sft": CHAT_TEMPLATE, "nobos": nobos}.get(template or "", template))
    renderer = PromptRenderer(tok, Endpoint(model="x", prompt_format=fmt))
    for msgs in (MSG, MSG + [{"role": "assistant", "content": "Verdict:"}]):
        ids = renderer.ids(msgs)
        assert (ids[0] == tok.bos_token_id) == bool(n_bos)
        assert ids.count(tok.bos_token_id) == n_bos  # never doubled


def test_plain_format_answers_are_not_reused_from_before_bos():
    """Generation ids of plain-format models changed with the BOS fix; chat-format ids did not."""
    plain, chat = Endpoint(model="m", prompt_format="plain"), Endpoint(model="m", prompt_format="chat")
    assert plain.identity()["plain_bos"] is True and "plain_bos" not in chat.identity()


def _degenerate(text: str) -> bool:
    words = text.split()
    return len(words) < 3 or len(set(words)) / len(words) < 0.5 or text.lower().startswith("assistant")


@pytest.mark.slow
def test_the_embedded_base_model_gets_its_bos_and_answers_sensibly():
    """Without <bos>, Gemma 3 270M answered 9 of these 10 prompts with 'Assistant, Assistant, ...'-style text."""
    from lima_eval.benchmarks import load_prompts
    from lima_eval.config import BenchmarkSpec

    prompts = load_prompts(BenchmarkSpec(name="demo"))[:10]
    spec = Endpoint.make(model="embedded:gemma3-270m", prompt_format="plain", batch_size=16,
                    sampling=Sampling(max_new_tokens=32))  # LIMA's sampling, as the quickstart's baseline
    with open_backend(spec) as base:
        assert base.renderer.ids(MSG)[0] == base.tokenizer.bos_token_id
        answers = base.generate([[{"role": "user", "content": p.text}] for p in prompts])
    bad = [a.text for a in answers if _degenerate(a.text)]
    assert len(bad) <= 1, bad


def test_progress_moves_during_one_batch_and_adds_up_to_the_requests():
    """A stage's bar moves with each decoding step of a single large batch, not once per batch."""
    seen: list[float] = []
    spec = Endpoint.make(model="embedded:tiny-random", batch_size=8, sampling=Sampling(temperature=0, max_new_tokens=6))
    with open_backend(spec) as backend:
        backend.on_progress = seen.append
        out = backend.generate([MSG] * 5)
    assert len(out) == 5
    assert len(seen) >= 5  # one report per decoding step (plus the remainder of rows that stopped early)
    assert sum(seen) == pytest.approx(5.0)


def test_a_shared_prompt_start_is_computed_once_with_the_same_answers(greedy):
    """A judge's prompts share a long start (system prompt, instructions): the batch computes it once and each
    row still gets what it gets alone (same text, same log-probabilities)."""
    from lima_eval.backends.base import LogprobRequest
    from lima_eval.backends.hf import SHARED_PREFIX_MIN

    rules = "Compare the two answers below carefully and impartially, then give a verdict. " * 6
    prompts = [[{"role": "system", "content": rules}, {"role": "user", "content": f"Question {q}: " + "x " * n},
                {"role": "assistant", "content": "Verdict:"}] for q, n in ((1, 3), (2, 30), (3, 12))]
    want = LogprobRequest(top=3, candidates=("A", "B"))
    together = greedy.generate(prompts, logprobs=want)
    shared = len(greedy._prefix[0])
    assert shared >= SHARED_PREFIX_MIN and greedy.renderer.ids(prompts[0])[:shared] == list(greedy._prefix[0])
    alone = [greedy.generate([p], logprobs=want)[0] for p in prompts]
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.usage for c in together] == [c.usage for c in alone]
    for t, a in zip(together, alone):
        for (tok_t, alts_t), (tok_a, alts_a) in zip(t.logprobs, a.logprobs):
            assert tok_t == tok_a and alts_t.keys() == alts_a.keys()
            assert all(abs(alts_t[k] - alts_a[k]) < 1e-4 for k in alts_t)
