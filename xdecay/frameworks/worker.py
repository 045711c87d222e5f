"""Worker entry point: `python -m xdecay.frameworks.worker FRAMEWORK (REQUEST.npz RESULT_DIR)...`.

Runs in its own process so that each framework's import, crash or hang, and
paddle's logging side effects, stay out of the parent (README, "How it works").
"""
from __future__ import annotations

import sys
from pathlib import Path

from .adapters import execute, load_adapter
from .lifeline import watch_parent
from .protocol import ResultFiles, read_request


def main(argv: list[str]) -> int:
    watch_parent()
    framework, files = argv[0], argv[1:]
    pairs = [(Path(files[i]), Path(files[i + 1])) for i in range(0, len(files), 2)]
    requests = [read_request(request) for request, _ in pairs]
    try:
        adapter = load_adapter(framework)
    except ImportError as exc:
        print(f"xdecay worker: cannot import {framework}: {exc}", file=sys.stderr)
        return 3
    for request, (_, result) in zip(requests, pairs):
        files = ResultFiles(result)
        files.write(framework, adapter.version(), execute(adapter, request, files.allocate))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
