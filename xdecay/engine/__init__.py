"""The engine: the numpy start, the float64 reference of every update rule, rule inference, the comparison, baselines, and the pipelines of compare and explain."""
