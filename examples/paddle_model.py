"""The transformer of examples/torch_model.py in PaddlePaddle, with its optimizer factories.

    xdecay audit --paddle examples/paddle_model.py:make --no-decay 'bias|norm'
    xdecay audit --torch examples/torch_model.py:make --paddle examples/paddle_model.py:make \\
        --name-map examples/name_map.toml

Module and attribute names follow the torch model, so most parameter names agree;
paddle's MultiHeadAttention has separate q/k/v projections where torch's has one
in_proj (examples/name_map.toml pairs them), and paddle stores Linear weights [in, out].
"""
from __future__ import annotations

import re

import paddle
from paddle import nn
from sizes import LARGE, LR, SMALL, WEIGHT_DECAY, Size, tokens


class Block(nn.Layer):
    """Pre-norm encoder layer: LayerNorm, multi-head self-attention, LayerNorm, MLP."""

    def __init__(self, size: Size) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(size.dim)
        self.attn = nn.MultiHeadAttention(size.dim, size.heads)
        self.norm2 = nn.LayerNorm(size.dim)
        self.mlp = nn.Sequential(nn.Linear(size.dim, size.ff), nn.GELU(), nn.Linear(size.ff, size.dim))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h)
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Layer):
    def __init__(self, size: Size, head_attr: paddle.ParamAttr | None = None) -> None:
        super().__init__()
        self.embed = nn.Embedding(size.vocab, size.dim)
        self.pos = self.create_parameter([1, size.seq, size.dim], default_initializer=nn.initializer.Constant(0.0))
        self.blocks = nn.LayerList([Block(size) for _ in range(size.layers)])
        self.norm = nn.LayerNorm(size.dim)
        self.head = nn.Linear(size.dim, size.classes, weight_attr=head_attr)

    def forward(self, tokens: paddle.Tensor) -> paddle.Tensor:
        x = self.embed(tokens) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(axis=1))


def _model_and_inputs(size: Size, head_attr: paddle.ParamAttr | None = None) -> tuple[TinyTransformer, tuple]:
    paddle.seed(0)
    return TinyTransformer(size, head_attr), (paddle.to_tensor(tokens(size)),)


def _adamw(model: TinyTransformer, no_decay: re.Pattern) -> paddle.optimizer.AdamW:
    # apply_decay_param_fun gets paddle's unique name (linear_3.w_0), not the attribute
    # path, so the pattern is matched on named_parameters() and the unique names kept.
    decay = {p.name for n, p in model.named_parameters() if not no_decay.search(n)}
    return paddle.optimizer.AdamW(learning_rate=LR, parameters=model.parameters(), weight_decay=WEIGHT_DECAY,
                                  apply_decay_param_fun=lambda name: name in decay)


def make(size: Size = SMALL):
    """Done right: biases and LayerNorm weights excluded through apply_decay_param_fun."""
    model, inputs = _model_and_inputs(size)
    return model, _adamw(model, re.compile("bias|norm")), inputs


def make_mistake():
    """The torch recipe's exclusion list (`bias`, `LayerNorm.weight`): the norm weights stay decayed."""
    model, inputs = _model_and_inputs(SMALL)
    return model, _adamw(model, re.compile(r"bias|LayerNorm\.weight")), inputs


def make_param_attr():
    """Done right, plus an L2Decay ParamAttr on the head weight (as older paddle code
    regularizes): AdamW applies both, the head weight is decayed twice."""
    model, inputs = _model_and_inputs(SMALL, paddle.ParamAttr(regularizer=paddle.regularizer.L2Decay(1e-4)))
    return model, _adamw(model, re.compile("bias|norm")), inputs


def make_large():
    """`make` at the size of BERT-base (LARGE): the audit's cost beyond the model's own steps."""
    return make(LARGE)
