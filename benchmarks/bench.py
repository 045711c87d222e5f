"""xdecay's speed and memory, as ratios measured in one run on this machine (issues 6, 17).

    python benchmarks/bench.py [--repeat N] [--skip-large | --only-large] [--large-repeat N]
    python benchmarks/bench.py --sweep [--sizes 64,256,1024,4096] [--steps 1,10,100]

floor  `python -c "import torch, paddle; <build one torch optimizer>"`: what any program
       that verifies torch optimizers pays (torch.optim imports torch._dynamo on the first one)
P1  wall(`xdecay compare --case all`) / floor                                   target <= 1.0
P3  wall(`xdecay explain`) / floor                                              target <= 1.5
P4  wall(10 run_case calls in one program) / wall(1 call), the first 10 shipped
    cases: what a user's test suite pays                                        target <= 1.5
P2  wall(`xdecay compare --case benchmarks/large_adam.toml`) / wall(the same steps
    written by hand, benchmarks/plain_large_adam.py)                            target <= 0.9
    and xdecay's parent peak memory / the plain script's peak memory            target <= 1.0
    and, no target, against the plain script with the heap setting xdecay's workers use
    (frameworks/allocator.py): how much of P2 is that setting rather than xdecay's design
For reference it also times `python -c "import torch, paddle"`.

--sweep: how cost grows. benchmarks/large_adam.toml (Adam, three ways, both frameworks)
at square layers of each size and each number of steps: wall time and peak memory of
`xdecay compare` against the snapshot data it reads (6 runs x (steps + 1) x the layer's
float32 parameters). Sizes whose snapshots exceed the case limit (16 GiB) are left out.

Other engineers share the machine, so absolute times drift: the commands run in rounds
(A B C ... A B C ...), a ratio is taken within each round, and the median over rounds is
reported, with the load average at each round. Every command runs as its own process from
the repository root, output discarded. Peak memory is each process's VmHWM from /proc,
sampled every 10 ms while it runs (the last sample before it exits), and so is its CPU
time (user + system, /proc/PID/stat): under load a process's CPU seconds drift far less
than its wall time.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
XDECAY = [PYTHON, "-m", "xdecay"]
SAMPLE_EVERY = 0.01
FIRST_CASES = "from xdecay.case_files import find_cases; names = [p.stem for p in find_cases('all')][:10]"

COMMANDS = {
    "import": [PYTHON, "-c", "import torch, paddle"],
    "floor": [PYTHON, "-c", "import torch, paddle; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)"],
    "P1": [*XDECAY, "compare", "--case", "all"],
    "P3": [*XDECAY, "explain"],
    "P4 one": [PYTHON, "-c", f"import xdecay; {FIRST_CASES}; assert xdecay.run_case(names[0]).ok"],
    "P4 ten": [PYTHON, "-c", f"import xdecay; {FIRST_CASES}; assert all(xdecay.run_case(n).ok for n in names)"],
}
LARGE = {
    "P2 plain": [PYTHON, "benchmarks/plain_large_adam.py"],
    "P2 plain kept": [PYTHON, "-c", "from xdecay.frameworks.allocator import keep_freed_memory; "
                      "keep_freed_memory(); import runpy; "
                      "runpy.run_path('benchmarks/plain_large_adam.py', run_name='__main__')"],
    "P2": [*XDECAY, "compare", "--case", "benchmarks/large_adam.toml"],
}
# (label, numerator, denominator, target)
RATIOS = [("P1 compare --case all / floor", "P1", "floor", 1.0),
          ("P3 explain / floor", "P3", "floor", 1.5),
          ("P4 10 run_case calls / 1 call", "P4 ten", "P4 one", 1.5)]
LARGE_RATIOS = [("P2 compare large_adam / plain script", "P2", "P2 plain", 0.9),
                ("P2 ... / plain script, heap kept", "P2", "P2 plain kept", None)]


@dataclass
class Measured:
    wall: float
    peak_kib: dict[str, int] = field(default_factory=dict)   # process label -> VmHWM
    returncode: int = 0
    cpu: dict[str, float] = field(default_factory=dict)      # process label -> CPU seconds


TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float | None:
    """utime + stime of a process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


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
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        for pid in [proc.pid, *_children(proc.pid)]:
            hwm, used = _hwm(pid), _cpu(pid)
            if hwm is not None:
                # Labelled at every sample: a worker's first sample may precede its exec.
                peaks[pid] = (_label(pid), max(hwm, peaks.get(pid, ("", 0))[1]))
            if used is not None:
                cpu[pid] = used
        time.sleep(SAMPLE_EVERY)
    wall = time.perf_counter() - start
    by_label: dict[str, int] = {}
    cpu_by_label: dict[str, float] = {}
    for pid, (label, kib) in peaks.items():
        by_label[label] = max(kib, by_label.get(label, 0))
        cpu_by_label[label] = cpu_by_label.get(label, 0.0) + cpu.get(pid, 0.0)
    if proc.returncode not in (0, 1):
        sys.exit(f"bench: {' '.join(cmd)} exited with {proc.returncode}")
    return Measured(wall, by_label, proc.returncode, cpu_by_label)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def rounds(commands: dict[str, list[str]], repeat: int) -> dict[str, list[Measured]]:
    """Every command once per round, in order, `repeat` rounds; the load before each round."""
    out: dict[str, list[Measured]] = {name: [] for name in commands}
    for k in range(repeat):
        print(f"round {k + 1}/{repeat}, load average {loadavg()}", file=sys.stderr, flush=True)
        for name, cmd in commands.items():
            out[name].append(measure(cmd))
    return out


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def report(runs: dict[str, list[Measured]], ratios: list[tuple[str, str, str, float | None]]) -> None:
    print(f"{'command':<12} {'median wall s':>13}   runs")
    for name, ms in runs.items():
        print(f"{name:<12} {statistics.median(m.wall for m in ms):13.2f}   "
              + " ".join(f"{m.wall:.2f}" for m in ms))
    print()
    print(f"{'ratio (median of per-round ratios)':<42} {'median':>6} {'range':>12} {'target':>8}")
    for label, a, b, target in ratios:
        each = [x.wall / y.wall for x, y in zip(runs[a], runs[b])]
        mid = statistics.median(each)
        verdict = "" if target is None else (f"{'<= ' + format(target, 'g'):>8} "
                                             + ("met" if mid <= target else "MISSED"))
        print(f"{label:<42} {mid:6.2f} {min(each):5.2f}-{max(each):<5.2f} {verdict}")
    print()


def memory(runs: dict[str, list[Measured]]) -> None:
    print("peak resident memory (VmHWM, largest over the rounds); CPU seconds (median over the rounds)")
    for name, ms in runs.items():
        labels = sorted({label for m in ms for label in m.peak_kib})
        print(f"  {name:<12} " + ", ".join(
            f"{label} {_mib(max(m.peak_kib.get(label, 0) for m in ms))} "
            f"{statistics.median(m.cpu.get(label, 0.0) for m in ms):.1f} s" for label in labels))


def sweep(sizes: list[int], steps_list: list[int]) -> None:
    """compare at each layer size and number of steps, one run each (see the module doc)."""
    template = (ROOT / "benchmarks" / "large_adam.toml").read_text()
    print(f"{'layer':>10} {'steps':>5} {'snapshots':>10} {'wall s':>7} {'s/GiB':>7} "
          f"{'parent':>9} {'torch w.':>9} {'paddle w.':>9}   load")
    with tempfile.TemporaryDirectory(prefix="xdecay-sweep-") as tmp:
        for size in sizes:
            for steps in steps_list:
                data = 4 * (size * size + size) * (steps + 1) * 6
                if data > 16 * 2**30:
                    print(f"{size}x{size:<5} {steps:5} {data / 2**30:8.1f} G  (over the case limit, left out)")
                    continue
                text = (template.replace("in_features = 4096", f"in_features = {size}")
                        .replace("out_features = 4096", f"out_features = {size}")
                        .replace("steps = 10", f"steps = {steps}"))
                case = Path(tmp) / f"sweep_{size}_{steps}.toml"
                case.write_text(text)
                load = loadavg()
                m = measure([*XDECAY, "compare", "--case", str(case)])
                peak = {k: _mib(v) for k, v in m.peak_kib.items()}
                print(f"{size}x{size:<5} {steps:5} {data / 2**20:8.1f} M {m.wall:7.2f} "
                      f"{m.wall / (data / 2**30):7.1f} {peak.get('parent', '-'):>9} "
                      f"{peak.get('torch worker', '-'):>9} {peak.get('paddle worker', '-'):>9}   {load}",
                      flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="rounds of the small commands (default 5)")
    p.add_argument("--skip-large", action="store_true", help="leave out P2 (about 2 min a round, 4-5 GB)")
    p.add_argument("--only-large", action="store_true", help="only P2")
    p.add_argument("--large-repeat", type=int, default=1, help="rounds of P2 (default 1)")
    p.add_argument("--sweep", action="store_true", help="only the cost growth sweep")
    p.add_argument("--sizes", default="64,256,1024,4096", help="--sweep: layer sizes (square)")
    p.add_argument("--steps", default="1,10,100", help="--sweep: numbers of steps")
    args = p.parse_args()

    if args.sweep:
        print(f"load average at start: {loadavg()}")
        sweep([int(x) for x in args.sizes.split(",")], [int(x) for x in args.steps.split(",")])
        print(f"load average at end: {loadavg()}")
        return
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}")
    print(f"load average at start: {loadavg()}")
    small = {} if args.only_large else rounds(COMMANDS, args.repeat)
    if small:
        report(small, RATIOS)
    if not args.skip_large:
        large = rounds(LARGE, args.large_repeat)
        report(large, LARGE_RATIOS)
        parent = [x.peak_kib.get("parent", 0) / y.peak_kib.get("parent", 1)
                  for x, y in zip(large["P2"], large["P2 plain"])]
        mid = statistics.median(parent)
        print(f"P2 parent peak memory / plain script's: {mid:.2f} (target <= 1) "
              + ("met" if mid <= 1 else "MISSED"))
        print()
        small.update(large)
    memory(small)
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()
