"""The frameworks: one adapter per framework (the only modules that import it), the worker process that runs it, the runner that starts workers, and the files between them."""
