"""xdecay audit on ~100M parameters (README, "Auditing your own model"): ten Linear(3200, 3200) + LayerNorm."""
import paddle


def make():
    paddle.seed(0)
    layers = []
    for _ in range(10):
        layers += [paddle.nn.Linear(3200, 3200), paddle.nn.LayerNorm(3200)]
    model = paddle.nn.Sequential(*layers)
    decay = {p.name for n, p in model.named_parameters() if len(p.shape) == 2}
    opt = paddle.optimizer.AdamW(learning_rate=1e-3, parameters=model.parameters(), weight_decay=0.05,
                                 apply_decay_param_fun=lambda name: name in decay)
    return model, opt, paddle.rand([8, 3200])
