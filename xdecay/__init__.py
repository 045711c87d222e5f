"""xdecay: a cross-framework equivalence verifier for weight decay."""
__version__ = "0.1.0"
