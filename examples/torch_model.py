"""A small transformer classifier in PyTorch and the optimizer factories `xdecay audit` runs.

    xdecay audit --torch examples/torch_model.py:make --no-decay 'bias|norm'
    xdecay audit --torch examples/torch_model.py:make_mistake --no-decay 'bias|norm'

Each factory returns (model, optimizer, inputs) as a training script builds them;
`model(*inputs)` is one forward pass. The paddle twin is examples/paddle_model.py.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

VOCAB, SEQ, DIM, HEADS, FF, LAYERS, CLASSES, BATCH = 50, 8, 16, 2, 32, 2, 3, 4
LR, WEIGHT_DECAY = 1e-3, 0.05


class Block(nn.Module):
    """Pre-norm encoder layer: LayerNorm, multi-head self-attention, LayerNorm, MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.attn = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
        self.norm2 = nn.LayerNorm(DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, FF), nn.GELU(), nn.Linear(FF, DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.pos = nn.Parameter(torch.zeros(1, SEQ, DIM))
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


def _model_and_inputs() -> tuple[TinyTransformer, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    tokens = np.random.default_rng(0).integers(0, VOCAB, (BATCH, SEQ))
    return TinyTransformer(), (torch.from_numpy(tokens),)


def make():
    """The usual recipe done right: biases and every LayerNorm weight in a group without decay."""
    model, inputs = _model_and_inputs()
    decay = [p for n, p in model.named_parameters() if not ("bias" in n or "norm" in n)]
    no_decay = [p for n, p in model.named_parameters() if "bias" in n or "norm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=LR)
    return model, optimizer, inputs


def make_mistake():
    """The recipe copied from a model whose norms are called `LayerNorm`: here they are
    `norm1`, `norm2`, `norm`, so their weights stay in the decayed group."""
    model, inputs = _model_and_inputs()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [{"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
               "weight_decay": WEIGHT_DECAY},
              {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
               "weight_decay": 0.0}]
    return model, torch.optim.AdamW(groups, lr=LR), inputs
