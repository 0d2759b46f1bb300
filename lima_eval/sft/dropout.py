"""Residual dropout: dropout on each decoder layer's attention and MLP branch outputs, training mode only.

transformers has no such setting, so we attach forward hooks to the branch modules instead of forking model
code. The branch ends where its output joins the residual stream: the attention / MLP module itself for
Llama-style layers, the post-branch norm for Gemma-style "sandwich" layers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lima_eval.errors import LimaEvalError
from lima_eval.recipe import dropout_schedule


def decoder_layers(model: Any) -> nn.ModuleList:
    """The decoder's list of transformer blocks, for the common causal LM layouts (also under peft)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # unwrap peft
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else getattr(base, "model", base)
    layers = getattr(decoder, "layers", None) or getattr(decoder, "h", None)
    if not isinstance(layers, nn.ModuleList):
        raise LimaEvalError(f"residual dropout: cannot find the decoder layers of {type(model).__name__}")
    return layers


def branch_ends(layer: Any) -> list[nn.Module]:
    """The modules whose outputs are added to the residual stream in one decoder layer."""
    if hasattr(layer, "post_feedforward_layernorm") and hasattr(layer, "post_attention_layernorm"):
        return [layer.post_attention_layernorm, layer.post_feedforward_layernorm]  # Gemma-style sandwich norms
    attn = getattr(layer, "self_attn", None) or getattr(layer, "attn", None)
    mlp = getattr(layer, "mlp", None)
    if attn is None or mlp is None:
        raise LimaEvalError(f"residual dropout: unknown decoder layer layout {type(layer).__name__}")
    return [attn, mlp]


class ResidualDropout:
    """Attach with `ResidualDropout(model, top)`; `.probabilities` lists each layer's p; `.remove()` detaches."""

    def __init__(self, model: nn.Module, top: float):
        layers = decoder_layers(model)
        self.probabilities = dropout_schedule(len(layers), top)
        self._handles = []
        for layer, p in zip(layers, self.probabilities):
            if p <= 0:
                continue
            for module in branch_ends(layer):
                self._handles.append(module.register_forward_hook(_hook(p)))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def _hook(p: float) -> Any:
    def apply(module: nn.Module, args: Any, output: Any) -> Any:
        if not module.training:
            return None
        if isinstance(output, tuple):
            return (F.dropout(output[0], p, training=True),) + output[1:]
        if isinstance(output, torch.Tensor):
            return F.dropout(output, p, training=True)
        return None

    return apply
