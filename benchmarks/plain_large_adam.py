"""P2's yardstick: the steps of benchmarks/large_adam.toml written by hand, as a user
would, in one process: both frameworks, ways none / weight_decay / manual, the
weight after every step copied out, and the largest torch-paddle difference printed."""
from __future__ import annotations

import warnings

import numpy as np

IN, OUT, BATCH, STEPS, LR, COEFF, SEED = 4096, 4096, 64, 10, 0.001, 0.1, 0


def start():
    rng = np.random.default_rng(SEED)
    bound = 1.0 / np.sqrt(IN)
    w = rng.uniform(-bound, bound, (OUT, IN)).astype(np.float32)
    b = rng.uniform(-bound, bound, OUT).astype(np.float32)
    x = rng.uniform(0.0, 1.0, (BATCH, IN)).astype(np.float32)
    y = rng.uniform(0.0, 1.0, (BATCH, OUT)).astype(np.float32)
    return w, b, x, y


def run_torch(way: str) -> list[np.ndarray]:
    import torch
    w, b, x, y = start()
    layer = torch.nn.Linear(IN, OUT)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        layer.bias.copy_(torch.from_numpy(b))
    opt = torch.optim.Adam(layer.parameters(), lr=LR, weight_decay=COEFF if way == "weight_decay" else 0.0)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    weights = [layer.weight.detach().numpy().copy()]
    for _ in range(STEPS):
        opt.zero_grad()
        loss = ((layer(x) - y) ** 2).mean()
        if way == "manual":
            loss = loss + 0.5 * COEFF * sum((p ** 2).sum() for p in layer.parameters())
        loss.backward()
        opt.step()
        weights.append(layer.weight.detach().numpy().copy())
    return weights


def run_paddle(way: str) -> list[np.ndarray]:
    import paddle
    w, b, x, y = start()
    layer = paddle.nn.Linear(IN, OUT)
    layer.weight.set_value(w.T.copy())        # paddle stores [in, out]
    layer.bias.set_value(b)
    opt = paddle.optimizer.Adam(learning_rate=LR, parameters=layer.parameters(),
                                weight_decay=COEFF if way == "weight_decay" else None)
    x, y = paddle.to_tensor(x), paddle.to_tensor(y)
    weights = [layer.weight.numpy().T.copy()]
    for _ in range(STEPS):
        opt.clear_grad()
        loss = ((layer(x) - y) ** 2).mean()
        if way == "manual":
            loss = loss + 0.5 * COEFF * sum((p ** 2).sum() for p in layer.parameters())
        loss.backward()
        opt.step()
        weights.append(layer.weight.numpy().T.copy())
    return weights


def main() -> None:
    warnings.filterwarnings("ignore")
    for way in ("none", "weight_decay", "manual"):
        t, p = run_torch(way), run_paddle(way)
        print(way, "max |torch - paddle| of the weight:",
              max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in zip(t, p)))


if __name__ == "__main__":
    main()
