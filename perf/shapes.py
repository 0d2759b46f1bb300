"""Random-init models of a given shape, for throughput runs on GPUs (no weights to download)."""

from __future__ import annotations

from pathlib import Path

import torch


def build_1b(folder: Path, tokenizer_from: str) -> str:
    """A ~1.2B Llama (TinyLlama-like: 22 layers, hidden 2048, GQA 32/4) with the given tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_from)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                      num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=4096,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(cfg)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return str(folder)
