"""xdecay audit on ~100M parameters (README, "Auditing your own model"): ten Linear(3200, 3200) + LayerNorm."""
import torch


def make():
    torch.manual_seed(0)
    layers = []
    for _ in range(10):
        layers += [torch.nn.Linear(3200, 3200), torch.nn.LayerNorm(3200)]
    model = torch.nn.Sequential(*layers)
    decay = [p for n, p in model.named_parameters() if p.ndim == 2]
    rest = [p for n, p in model.named_parameters() if p.ndim != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=1e-3)
    return model, opt, torch.rand(8, 3200)
