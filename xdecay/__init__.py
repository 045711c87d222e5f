"""xdecay: a cross-framework equivalence verifier for weight decay."""
__version__ = "0.1.0"

from .api import run_case  # noqa: E402  (numpy only: the frameworks load in workers)

__all__ = ["run_case", "__version__"]
