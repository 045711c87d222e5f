"""A small transformer classifier in PyTorch and the optimizer factories `xdecay audit` runs.

    xdecay audit --torch examples/torch_model.py:make --no-decay 'bias|norm'
    xdecay audit --torch examples/torch_model.py:make_mistake --no-decay 'bias|norm'
    xdecay audit --torch examples/torch_model.py:make_large --no-decay 'bias|norm'    # ~110M parameters

Each factory returns (model, optimizer, inputs) as a training script builds them;
`model(*inputs)` is one forward pass. The paddle twin is examples/paddle_model.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

LR, WEIGHT_DECAY = 1e-3, 0.05


@dataclass(frozen=True)
class Size:
    vocab: int = 50
    seq: int = 8
    dim: int = 16
    heads: int = 2
    ff: int = 32
    layers: int = 2
    classes: int = 3
    batch: int = 4


# make_large: a BERT-base-sized encoder (12 layers of 768, vocab 32000): ~110M parameters.
LARGE = Size(vocab=32000, seq=128, dim=768, heads=12, ff=3072, layers=12, batch=2)


class Block(nn.Module):
    """Pre-norm encoder layer: LayerNorm, multi-head self-attention, LayerNorm, MLP."""

    def __init__(self, size: Size) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(size.dim)
        self.attn = nn.MultiheadAttention(size.dim, size.heads, batch_first=True)
        self.norm2 = nn.LayerNorm(size.dim)
        self.mlp = nn.Sequential(nn.Linear(size.dim, size.ff), nn.GELU(), nn.Linear(size.ff, size.dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Module):
    def __init__(self, size: Size) -> None:
        super().__init__()
        self.embed = nn.Embedding(size.vocab, size.dim)
        self.pos = nn.Parameter(torch.zeros(1, size.seq, size.dim))
        self.blocks = nn.ModuleList(Block(size) for _ in range(size.layers))
        self.norm = nn.LayerNorm(size.dim)
        self.head = nn.Linear(size.dim, size.classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


def _model_and_inputs(size: Size) -> tuple[TinyTransformer, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    tokens = np.random.default_rng(0).integers(0, size.vocab, (size.batch, size.seq))
    return TinyTransformer(size), (torch.from_numpy(tokens),)


def make(size: Size = Size()):
    """The usual recipe done right: biases and every LayerNorm weight in a group without decay."""
    model, inputs = _model_and_inputs(size)
    decay = [p for n, p in model.named_parameters() if not ("bias" in n or "norm" in n)]
    no_decay = [p for n, p in model.named_parameters() if "bias" in n or "norm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=LR)
    return model, optimizer, inputs


def make_mistake():
    """The recipe copied from a model whose norms are called `LayerNorm`: here they are
    `norm1`, `norm2`, `norm`, so their weights stay in the decayed group."""
    model, inputs = _model_and_inputs(Size())
    no_decay = ("bias", "LayerNorm.weight")
    groups = [{"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
               "weight_decay": WEIGHT_DECAY},
              {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
               "weight_decay": 0.0}]
    return model, torch.optim.AdamW(groups, lr=LR), inputs


def make_large():
    """`make` at the size of BERT-base (LARGE): the audit's cost beyond the model's own steps."""
    return make(LARGE)
