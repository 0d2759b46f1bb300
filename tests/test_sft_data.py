"""Rendering conversations for SFT: which token positions carry loss, EOT placement, bad rows."""

import json

import pytest

from lima_eval.errors import InputError
from lima_eval.sft.data import IGNORE, load_conversations, render
from lima_eval.sft.recipe import EOT


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lima_eval.embedded import resolve
    from lima_eval.sft.train import add_eot

    path = resolve("embedded:tiny-random")
    tokenizer = AutoTokenizer.from_pretrained(path)
    add_eot(tokenizer, AutoModelForCausalLM.from_pretrained(path))
    return tokenizer


CONVERSATIONS = [
    ["Hi there", "Hello! How can I help?"],
    ["Q1", "A1", "Q2 is longer than the first", "A2"],
    ["one", "two", "three", "four", "five", "six"],
]


@pytest.mark.parametrize("turns", CONVERSATIONS)
def test_loss_only_on_assistant_tokens_and_their_eot(tok, turns):
    eot = tok.convert_tokens_to_ids(EOT)
    ids, labels = render(turns, tok, eot, max_len=4096)
    # Expected mask built independently: utterance by utterance, assistant ones (odd index) carry loss.
    expected = []
    for i, t in enumerate(turns):
        n = len(tok(t, add_special_tokens=False)["input_ids"]) + 1  # + EOT
        expected += [i % 2 == 1] * n
    bos = [False] if tok.bos_token_id is not None else []
    assert [lab != IGNORE for lab in labels] == bos + expected
    assert [i for i, lab in zip(ids, labels) if lab != IGNORE] == [lab for lab in labels if lab != IGNORE]
    assert ids.count(eot) == len(turns)  # one EOT after every utterance
    assert labels[-1] == eot  # the model learns to stop


def test_rendering_matches_the_saved_chat_template(tok):
    eot = tok.convert_tokens_to_ids(EOT)
    turns = CONVERSATIONS[1]
    ids, _ = render(turns, tok, eot, max_len=4096)
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns[:3])]
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids  # generation sees exactly what training saw


def test_trimmed_to_max_len(tok):
    eot = tok.convert_tokens_to_ids(EOT)
    ids, labels = render(["word " * 50, "answer " * 50], tok, eot, max_len=32)
    assert len(ids) == len(labels) == 32


def test_messages_format_with_system(tmp_path):
    path = tmp_path / "m.jsonl"
    row = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hello"}]}
    path.write_text(json.dumps(row) + "\n")
    assert load_conversations(str(path)) == [["Be brief.\n\nHi", "Hello"]]


def test_demo_set_is_about_60_examples_with_multi_turn():
    convs = load_conversations("demo")
    assert 50 <= len(convs) <= 70
    assert sum(len(c) > 2 for c in convs) >= 3


@pytest.mark.parametrize("row,message", [
    ('{"conversations": ["only a question"]}', "line 2: needs at least a user turn and an assistant turn"),
    ('{"conversations": ["q", "a", "q2"]}', "line 2: the last utterance must be the assistant's"),
    ('{"conversations": "q a"}', "line 2, field 'conversations': must be a list of strings"),
    ('{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}',
     "line 2, field 'messages': message 0 has role 'assistant'"),
    ('{"text": "hello"}', "line 2: no 'conversations' or 'messages' field"),
    ('{"conversations": ["q", "  "]}', "line 2: utterance 1 is empty"),
    ("{broken", "line 2: not valid JSON"),
])
def test_bad_rows_name_the_line(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"conversations": ["fine", "row"]}\n' + row + "\n")
    with pytest.raises(InputError) as err:
        load_conversations(str(path))
    assert f"{path}, {message}" in str(err.value)
