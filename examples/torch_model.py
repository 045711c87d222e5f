"""A small transformer classifier in PyTorch and the optimizer factories `xdecay audit` runs.

    xdecay audit --torch examples/torch_model.py:make --no-decay 'bias|norm'
    xdecay audit --torch examples/torch_model.py:make_mistake --no-decay 'bias|norm'
    xdecay audit --torch examples/torch_model.py:make_large --no-decay 'bias|norm'    # ~110M parameters

Each factory returns (model, optimizer, inputs) as a training script builds them;
`model(*inputs)` is one forward pass. The paddle twin is examples/paddle_model.py.
"""
from __future__ import annotations

import torch
from sizes import LARGE, LR, SMALL, WEIGHT_DECAY, Size, tokens
from torch import nn


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
    return TinyTransformer(size), (torch.from_numpy(tokens(size)),)


def make(size: Size = SMALL):
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
    model, inputs = _model_and_inputs(SMALL)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [{"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
               "weight_decay": WEIGHT_DECAY},
              {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
               "weight_decay": 0.0}]
    return model, torch.optim.AdamW(groups, lr=LR), inputs


def make_large():
    """`make` at the size of BERT-base (LARGE): the audit's cost beyond the model's own steps."""
    return make(LARGE)
