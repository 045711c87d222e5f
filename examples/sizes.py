"""What examples/torch_model.py and examples/paddle_model.py share: the model's size, the
optimizer's numbers and the input tokens (numpy, so both frameworks see the same batch)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


SMALL = Size()
# make_large: a BERT-base-sized encoder (12 layers of 768, vocab 32000): ~110M parameters.
LARGE = Size(vocab=32000, seq=128, dim=768, heads=12, ff=3072, layers=12, batch=2)


def tokens(size: Size) -> np.ndarray:
    return np.random.default_rng(0).integers(0, size.vocab, (size.batch, size.seq))
