"""The SFT stage on a tiny random Llama with the SmolLM2 tokenizer: recipe, dropout, EOT, resume, LoRA, DDP."""

import dataclasses
import json
import math
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import REPO
from transformers import TrainerCallback

from lima_eval.sft.recipe import EOT, SFTConfig, dropout_schedule, lr_at
from lima_eval.sft.train import train

FAST = {"base": "embedded:tiny-random", "batch_size": 4, "micro_batch_size": 2, "max_seq_len": 96, "keep_epochs": [],
            "residual_dropout": 0.0}


def tiny_data(tmp_path, n=8):
    path = tmp_path / "d.jsonl"
    rows = [{"conversations": [f"Question {i}?", f"Answer {i} is short."]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


class Record(TrainerCallback):
    """Learning rate actually used by the optimiser at each step, and the loss logged after it."""

    def __init__(self):
        self.lrs, self.losses = [], []
        self.optimizer = None

    def on_step_begin(self, args, state, control, optimizer=None, **kw):
        self.lrs.append(optimizer.param_groups[0]["lr"])

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])


def test_schedules_are_limas():
    assert lr_at(0, 11, 1e-5, 1e-6) == 1e-5
    assert lr_at(5, 11, 1e-5, 1e-6) == pytest.approx(5.5e-6)
    assert lr_at(10, 11, 1e-5, 1e-6) == pytest.approx(1e-6)
    assert dropout_schedule(4, 0.3) == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_learning_rate_first_middle_last_step(tmp_path):
    rec = Record()
    cfg = SFTConfig(**FAST, data=tiny_data(tmp_path, 20), out=str(tmp_path / "o"), epochs=1)
    train(cfg, show_progress=False, callbacks=[rec])
    n = len(rec.lrs)
    assert n == 5  # 20 examples / batch 4
    assert rec.lrs[0] == pytest.approx(1e-5)
    assert rec.lrs[n // 2] == pytest.approx(1e-5 + (1e-6 - 1e-5) * (n // 2) / (n - 1))
    assert rec.lrs[-1] == pytest.approx(1e-6)
    saved = yaml.safe_load((tmp_path / "o" / "sft_config.yaml").read_text())
    assert (saved["adam_beta2"], saved["weight_decay"], saved["epochs"]) == (0.95, 0.1, 1)


def test_residual_dropout_per_layer_and_off_in_eval():
    from transformers import AutoModelForCausalLM

    from lima_eval.embedded import resolve
    from lima_eval.sft.dropout import ResidualDropout, branch_ends, decoder_layers

    model = AutoModelForCausalLM.from_pretrained(resolve("embedded:tiny-random"))
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    model.eval()
    with torch.no_grad():
        before = model(ids).logits
    hooks = ResidualDropout(model, 0.3)
    assert hooks.probabilities == pytest.approx(dropout_schedule(len(decoder_layers(model)), 0.3))
    assert hooks.probabilities[0] == 0.0 and hooks.probabilities[-1] == pytest.approx(0.3)
    assert branch_ends(decoder_layers(model)[0]) == [decoder_layers(model)[0].self_attn, decoder_layers(model)[0].mlp]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)  # eval mode: no dropout
        model.train()
        torch.manual_seed(0)
        assert not torch.allclose(model(ids).logits, before)  # training mode: the top layer drops
    hooks.remove()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)


def test_gemma_style_layers_drop_after_their_post_norms():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from lima_eval.sft.dropout import branch_ends, decoder_layers

    cfg = Gemma3TextConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=1, num_key_value_heads=1, head_dim=64)
    layer = decoder_layers(Gemma3ForCausalLM(cfg))[0]
    assert branch_ends(layer) == [layer.post_attention_layernorm, layer.post_feedforward_layernorm]


def test_every_trainable_parameter_moves_and_loss_falls(tmp_path):
    from transformers import AutoModelForCausalLM

    from lima_eval.embedded import resolve

    before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(resolve("embedded:tiny-random"))
              .state_dict().items()}
    rec = Record()
    cfg = SFTConfig(**FAST, data=tiny_data(tmp_path, 4), out=str(tmp_path / "o"), epochs=12, learning_rate=3e-3,
                    final_learning_rate=3e-4)
    out = train(cfg, show_progress=False, callbacks=[rec])
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    for name, old in before.items():
        new = after[name]
        if "embed_tokens" in name or "lm_head" in name:
            new = new[: old.shape[0]]  # the EOT row was added
        assert not torch.equal(new, old), f"{name} did not move"
    assert rec.losses[-1] < rec.losses[0] - 1.0  # falls by more than a nat on a small fixed set


def test_learns_to_emit_eot_and_generation_stops_there(tmp_path):
    from lima_eval.backends.base import open_backend
    from lima_eval.config import Endpoint, Sampling

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"conversations": ["Say hi", "hi"]}) + "\n")
    cfg = SFTConfig(**(FAST | {"batch_size": 1, "micro_batch_size": 1}), data=str(data), out=str(tmp_path / "o"),
                    epochs=60, learning_rate=1e-2, final_learning_rate=1e-3)
    out = train(cfg, show_progress=False)
    gen = json.loads((out / "generation_config.json").read_text())
    with open_backend(Endpoint(model=str(out), sampling=Sampling(temperature=0, max_new_tokens=20))) as backend:
        eot = backend.tokenizer.convert_tokens_to_ids(EOT)
        assert gen["eos_token_id"][0] == eot
        (reply,) = backend.generate([[{"role": "user", "content": "Say hi"}]])
    assert reply.text == "hi" and reply.finish_reason == "stop"
    assert reply.usage["completion_tokens"] == len(backend_tokens("hi", out)) + 1  # "hi", then EOT: stopped there


def backend_tokens(text, path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))(text, add_special_tokens=False)["input_ids"]


class StopAfterFirstEpoch(TrainerCallback):
    def on_epoch_end(self, args, state, control, **kw):
        control.should_training_stop = True


def test_resume_reproduces_the_uninterrupted_next_step_loss(tmp_path):
    common = dict(FAST | {"residual_dropout": 0.2}, data=tiny_data(tmp_path, 8), epochs=3, learning_rate=1e-3,
                  final_learning_rate=1e-4)
    straight = Record()
    train(SFTConfig(**common, out=str(tmp_path / "a")), show_progress=False, callbacks=[straight])
    first = Record()
    train(SFTConfig(**common, out=str(tmp_path / "b")), show_progress=False, callbacks=[first, StopAfterFirstEpoch()])
    assert not (tmp_path / "b" / "lima_sft.json").exists()  # interrupted: not complete
    resumed = Record()
    train(SFTConfig(**common, out=str(tmp_path / "b")), show_progress=False, callbacks=[resumed])
    assert len(first.losses) == 2 and len(resumed.losses) == 4
    assert first.losses == pytest.approx(straight.losses[:2], rel=1e-5)  # fp32 sums: thread-order noise ~1e-6
    assert resumed.losses[0] == pytest.approx(straight.losses[2], rel=1e-5)  # the next step, dropout included
    assert resumed.losses == pytest.approx(straight.losses[2:], rel=1e-5)
    again = Record()
    train(SFTConfig(**common, out=str(tmp_path / "b")), show_progress=False, callbacks=[again])
    assert again.losses == []  # complete: nothing to do


def test_lora_trains_adapters_and_the_hf_backend_loads_them(tmp_path):
    from lima_eval.backends.base import open_backend
    from lima_eval.config import Endpoint, Sampling

    cfg = SFTConfig(**FAST, data=tiny_data(tmp_path, 4), out=str(tmp_path / "o"), epochs=1, lora=True,
                    learning_rate=1e-3)
    out = train(cfg, show_progress=False)
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    with open_backend(Endpoint(model=str(out), sampling=Sampling(temperature=0, max_new_tokens=4))) as backend:
        assert backend.tokenizer.convert_tokens_to_ids(EOT) == len(backend.tokenizer) - 1
        (reply,) = backend.generate([[{"role": "user", "content": "Question 1?"}]])
    assert reply.error is None


def test_two_process_accelerate_run_matches_one_process(tmp_path):
    data = tiny_data(tmp_path, 16)
    flags = ["--base", "embedded:tiny-random", "--data", data, "--no-progress", "--set", "epochs=1",
             "--set", "batch_size=8", "--set", "micro_batch_size=4", "--set", "residual_dropout=0",
             "--set", "learning_rate=1e-3", "--set", "keep_epochs=[]"]
    one = subprocess.run([sys.executable, "-m", "lima_eval.cli", "sft", "--out", str(tmp_path / "one"), *flags],
                         capture_output=True, text=True, timeout=300, check=False)
    assert one.returncode == 0, one.stderr[-2000:]
    # The shipped multi-GPU DDP config, on 2 CPU processes: without CUDA the Trainer falls back to gloo.
    from lima_eval.backends.vllm_server import free_port

    # A free rendezvous port each time (the default 29500 can still be held by an earlier run on a busy machine).
    two = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                          str(REPO / "examples/accelerate/multi-gpu-ddp.yaml"), "--num_processes", "2",
                          "--main_process_port", str(free_port()),
                          "--mixed_precision", "no", "-m", "lima_eval.cli", "sft",
                          "--out", str(tmp_path / "two"), *flags],
                         capture_output=True, text=True, timeout=300, check=False)
    assert two.returncode == 0, two.stderr[-2000:]
    assert yaml.safe_load((tmp_path / "two" / "sft_config.yaml").read_text())["world_size"] == 2
    a = json.loads((tmp_path / "one" / "lima_sft.json").read_text())["losses"]
    b = json.loads((tmp_path / "two" / "lima_sft.json").read_text())["losses"]
    assert len(a) == len(b) == 2
    assert b == pytest.approx(a, rel=1e-3)


def test_killed_sft_process_resumes_from_its_last_epoch_checkpoint(tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "lima_eval.cli", "sft", "--base", "embedded:tiny-random", "--data", "demo",
           "--out", str(out), "--no-progress", "--set", "batch_size=8",
           "--set", "micro_batch_size=8", "--set", "max_seq_len=48", "--set", "keep_epochs=[]"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        ckpts = list((out / "checkpoints").glob("checkpoint-*/trainer_state.json"))
        if ckpts:
            time.sleep(0.5)  # let the checkpoint finish writing
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "lima_sft.json").exists(), "finished before it could be killed"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming from" in rerun.stderr
    done = json.loads((out / "lima_sft.json").read_text())
    assert done["steps"] == 15 * 8  # LIMA's 15 epochs; 57 demo conversations / batch 8 = 8 steps an epoch
    assert len(done["losses"]) == done["steps"]  # the history before the kill is kept


@pytest.mark.gpu
def test_bf16_training_on_cuda(tmp_path):
    rec = Record()
    cfg = SFTConfig(**FAST, data=tiny_data(tmp_path, 8), out=str(tmp_path / "o"), epochs=2, learning_rate=1e-3)
    out = train(cfg, show_progress=False, callbacks=[rec])
    assert yaml.safe_load((out / "sft_config.yaml").read_text())["dtype"] == "auto"
    assert all(not math.isnan(loss) for loss in rec.losses) and rec.losses[-1] < rec.losses[0]


class SeenCheckpoint(TrainerCallback):
    """Whether a full resumable checkpoint existed on disk during training (checked at each epoch start)."""

    def __init__(self, out):
        self.out, self.seen = out, False

    def on_epoch_begin(self, args, state, control, **kw):
        self.seen |= any((self.out / "checkpoints").glob("checkpoint-*"))


@pytest.mark.parametrize("checkpoints,save_dtype,dtype", [
    (True, "auto", "F32"),        # tiny-random is a float32 base: kept
    (False, "bfloat16", "BF16"),  # no resumable checkpoints at all; saved in bf16 (half the disk)
])
def test_only_what_later_steps_need_is_kept(tmp_path, checkpoints, save_dtype, dtype):
    """The resumable checkpoint (optimiser state) is removed once training completes, or never written when
    `checkpoints: false`; the model is saved in the base's dtype unless save_dtype says otherwise."""
    from safetensors import safe_open

    out = tmp_path / "o"
    seen = SeenCheckpoint(out)
    cfg = SFTConfig(**FAST, data=tiny_data(tmp_path, 8), out=str(out), epochs=3, checkpoints=checkpoints,
                    save_dtype=save_dtype)
    train(cfg, show_progress=False, callbacks=[seen])
    assert seen.seen == checkpoints
    assert not (out / "checkpoints").exists()
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        name = next(iter(f.keys()))
        assert str(f.get_slice(name).get_dtype()) == dtype
    # Neither setting is part of the recipe: changing them does not retrain.
    from lima_eval.sft.train import is_complete

    assert is_complete(dataclasses.replace(cfg, checkpoints=not checkpoints, save_dtype="float32"))


def test_a_bad_save_dtype_is_an_error_before_any_training(tmp_path):
    from lima_eval.errors import ConfigError

    cfg = SFTConfig(**FAST, data=tiny_data(tmp_path, 4), out=str(tmp_path / "o"), epochs=1, save_dtype="int8")
    with pytest.raises(ConfigError, match="save_dtype 'int8' is not one of auto, float32, bfloat16, float16"):
        train(cfg, show_progress=False)
    assert not (tmp_path / "o").exists()  # nothing trained, nothing written
