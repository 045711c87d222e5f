"""xdecay: a cross-framework equivalence verifier for weight decay."""
__version__ = "0.1.0"

__all__ = ["run_case", "run_port", "run_audit", "Session", "__version__"]


def __getattr__(name: str):
    # Loaded on first use: a worker process imports xdecay.frameworks.worker, and the comparison
    # engine behind run_case would only lengthen its start (it is not needed there).
    if name == "run_case":
        from .api import run_case
        return run_case
    if name == "Session":
        from .session import Session
        return Session
    if name == "run_port":
        from .api import run_port
        return run_port
    if name == "run_audit":
        from .api import run_audit
        return run_audit
    raise AttributeError(f"module 'xdecay' has no attribute {name!r}")
