"""xdecay's speed and memory, as ratios measured in one run on this machine (issue 6).

    python benchmarks/bench.py [--repeat N] [--skip-large]

P1  wall(`xdecay compare --case all`) / wall(`python -c "import torch, paddle"`)   target <= 0.8
P2  wall(`xdecay compare --case benchmarks/large_adam.toml`) / wall(the same steps
    written by hand, benchmarks/plain_large_adam.py)                               target <= 1.15
P3  wall(`xdecay explain`) / wall(`python -c "import torch, paddle"`)              target <= 2
and the peak resident memory of xdecay's parent process and of each worker. For reference
it also times the import floor plus building one torch optimizer.

Every command runs as its own process from the repository root, output discarded;
a wall time is the median of --repeat runs. Peak memory is each process's VmHWM
from /proc, sampled every 10 ms while it runs (the last sample before it exits).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
XDECAY = [PYTHON, "-m", "xdecay"]
SAMPLE_EVERY = 0.01


@dataclass
class Measured:
    wall: float
    peak_kib: dict[str, int] = field(default_factory=dict)   # process label -> VmHWM
    returncode: int = 0


def _hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _label(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    args = [a.decode() for a in argv if a]
    if "xdecay.frameworks.worker" in args:
        return f"{args[args.index('xdecay.frameworks.worker') + 1]} worker"
    return "parent"


def measure(cmd: list[str]) -> Measured:
    """Run cmd, sampling the peak memory of it and its children until it exits."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks: dict[int, tuple[str, int]] = {}
    while proc.poll() is None:
        for pid in [proc.pid, *_children(proc.pid)]:
            hwm = _hwm(pid)
            if hwm is not None:
                # Labelled at every sample: a worker's first sample may precede its exec.
                peaks[pid] = (_label(pid), max(hwm, peaks.get(pid, ("", 0))[1]))
        time.sleep(SAMPLE_EVERY)
    wall = time.perf_counter() - start
    by_label: dict[str, int] = {}
    for label, kib in peaks.values():
        by_label[label] = max(kib, by_label.get(label, 0))
    return Measured(wall, by_label, proc.returncode)


def median_run(cmd: list[str], repeat: int) -> Measured:
    runs = [measure(cmd) for _ in range(repeat)]
    bad = [r.returncode for r in runs if r.returncode not in (0, 1)]
    if bad:
        sys.exit(f"bench: {' '.join(cmd)} exited with {bad[0]}")
    best = sorted(runs, key=lambda r: r.wall)[len(runs) // 2]
    best.wall = statistics.median(r.wall for r in runs)
    return best


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per command (median); P2 runs once")
    p.add_argument("--skip-large", action="store_true", help="leave out P2 (about a minute)")
    args = p.parse_args()

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}")
    floor = median_run([PYTHON, "-c", "import torch, paddle"], args.repeat)
    # What any torch program that builds an optimizer pays: torch.optim imports
    # torch._dynamo on the first one (about as long as `import torch` itself).
    optim_floor = median_run([PYTHON, "-c", "import torch, paddle; "
                              "torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)"], args.repeat)
    compare_all = median_run([*XDECAY, "compare", "--case", "all"], args.repeat)
    explain = median_run([*XDECAY, "explain"], args.repeat)
    rows = [("import floor: python -c 'import torch, paddle'", floor.wall, None, None),
            ("  ... and build one torch optimizer (for reference)", optim_floor.wall,
             optim_floor.wall / floor.wall, None),
            ("P1 xdecay compare --case all", compare_all.wall, compare_all.wall / floor.wall, 0.8),
            ("P3 xdecay explain", explain.wall, explain.wall / floor.wall, 2.0)]
    memory = [("compare --case all", compare_all), ("explain", explain)]
    if not args.skip_large:
        large = median_run([*XDECAY, "compare", "--case", "benchmarks/large_adam.toml"], 1)
        plain = median_run([PYTHON, "benchmarks/plain_large_adam.py"], 1)
        rows += [("P2 plain script: 4096x4096, batch 64, 10 Adam steps x 3 ways x 2 frameworks",
                  plain.wall, None, None),
                 ("P2 xdecay compare --case benchmarks/large_adam.toml", large.wall,
                  large.wall / plain.wall, 1.15)]
        memory += [("compare large_adam", large), ("plain script", plain)]
    print()
    print(f"{'measure':<82} {'wall s':>7} {'ratio':>6} {'target':>7}")
    for name, wall, ratio, target in rows:
        verdict = "" if target is None else ("met" if ratio <= target else "MISSED")
        print(f"{name:<82} {wall:7.2f} {'' if ratio is None else f'{ratio:6.2f}':>6} "
              f"{'' if target is None else f'<= {target:g}':>7} {verdict}")
    print()
    print("peak resident memory (VmHWM)")
    for name, m in memory:
        print(f"  {name:<20} " + ", ".join(f"{label} {_mib(kib)}" for label, kib in sorted(m.peak_kib.items())))


if __name__ == "__main__":
    main()
