"""The user's own factory, imported only when asked: `xdecay port --torch-file F:FUNC`
and `xdecay audit --torch MOD:FUNC` (in the framework's worker).

FUNC() returns a torch optimizer; its class, `defaults` and `param_groups` are read from
the object (torch itself is imported by the user's file, not here) and written back as
the call `port` parses -- the same literal-only path as `--torch "CALL"`, so a factory
gets no translation a call would not.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ..engine.optimizers import OPTIMIZERS, same_value
from ..errors import UsageError


def load_factory(spec: str) -> Any:
    """F:FUNC -> FUNC() (the optimizer). UsageError naming the option otherwise."""
    opt = f"--torch-file {spec}"
    file, sep, func = spec.rpartition(":")
    if not sep or not file or not func.isidentifier():
        raise UsageError(f"{opt}: expected FILE.py:FUNCTION")
    if not Path(file).is_file():
        raise UsageError(f"{opt}: no such file {file}")
    return call_factory(spec, opt)


def call_factory(spec: str, opt: str, search: tuple[str, ...] = ()) -> Any:
    """FUNC() of FILE.py:FUNC (the file imported, its folder on sys.path meanwhile, as
    `python FILE` has it) or of MODULE:FUNC (imported from sys.path and `search`, as
    `python -m` finds it from the current folder). The user's code failing -- at import
    or inside FUNC -- is a UsageError naming `opt`, in one line."""
    file, sep, func = spec.rpartition(":")
    if not sep or not file or not func.isidentifier():
        raise UsageError(f"{opt}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    added = [str(Path(file).resolve().parent)] if _is_file(file) else list(search)
    sys.path[:0] = added
    try:
        module = _import(file, opt)
        factory = getattr(module, func, None)
        if not callable(factory):
            raise UsageError(f"{opt}: {file} has no function {func}")
        return factory()
    except UsageError:
        raise
    except Exception as exc:      # the user's code: its failure is bad input, in one line
        raise UsageError(f"{opt}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    finally:
        for entry in added:
            sys.path.remove(entry)


def _is_file(name: str) -> bool:
    """FILE.py, or a path; else a dotted module name."""
    return name.endswith(".py") or not all(part.isidentifier() for part in name.split("."))


def _import(file: str, opt: str) -> ModuleType:
    if not _is_file(file):
        return importlib.import_module(file)
    path = Path(file)
    if not path.is_file():
        raise UsageError(f"{opt}: no such file {file}")
    module_spec = importlib.util.spec_from_file_location(f"xdecay_factory_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"{opt}: cannot import {file} (not a Python file)")
    module = importlib.util.module_from_spec(module_spec)
    # Registered as an import would be: a dataclass in the file looks its module up there.
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    return module


def torch_call(optimizer: Any, spec: str, no_decay: str) -> str:
    """The call that builds `optimizer` (non-default words only, its decay from the
    groups). A group setting that is not a decay exclusion cannot be ported."""
    opt = f"--torch-file {spec}"
    cls = type(optimizer).__name__
    infos = [i for i in OPTIMIZERS.values() if i.torch is not None and i.torch.cls == cls]
    groups = getattr(optimizer, "param_groups", None)
    defaults = getattr(optimizer, "defaults", None)
    if not infos or not isinstance(groups, list) or not groups or not isinstance(defaults, dict):
        raise UsageError(f"{opt}: returned {cls}, not a torch optimizer xdecay knows")
    native = infos[0].torch
    words = {w.native_name("torch"): w for i in infos for w in i.words if "torch" in w.native}
    known = {"params", native.lr, native.decay_arg, "decoupled_weight_decay",
             *(n.partition(".")[0] for n in words)}
    for key, value in defaults.items():
        # Implementation switches (foreach, fused, maximize, ...) the model has no word for:
        # only off can be ported.
        if key not in known and value not in (None, False):
            raise UsageError(f"{opt}: {cls} {key}={value!r} cannot be ported")
    decays = sorted({g.get(native.decay_arg) or 0 for g in groups} if native.decay_arg else {0})
    for key in known - {"params", native.decay_arg}:
        if len({repr(g.get(key)) for g in groups}) > 1:
            raise UsageError(f"{opt}: the parameter groups differ in {key}: only a decay exclusion can be ported")
    if len(decays) > 1 and (len(decays) > 2 or decays[0] != 0):
        raise UsageError(f"{opt}: the parameter groups decay with {decays}: only one coefficient and 0 can be ported")
    if len(decays) > 1 and not no_decay:
        raise UsageError(f"{opt}: some parameter groups are not decayed: say which with --no-decay PATTERN")
    group = groups[0]
    args = ["params", f"{native.lr}={_number(group[native.lr])!r}"]
    if native.decay_arg:
        args.append(f"{native.decay_arg}={decays[-1]!r}")
    # torch's AdamW sets the flag itself: a class that decays decoupled anyway says nothing.
    if group.get("decoupled_weight_decay") and native.decoupled not in (None, "explicit", cls):
        args.append("decoupled_weight_decay=True")
    for base in dict.fromkeys(n.partition(".")[0] for n in words):
        value = group.get(base)
        slots = {n: w for n, w in words.items() if n.partition(".")[0] == base}
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            if all(same_value(value[int(n.partition(".")[2])], w.default("torch")) for n, w in slots.items()):
                continue
            args.append(f"{base}={tuple(_number(v) for v in value)!r}")
        elif not same_value(value, slots[base].default("torch")):
            args.append(f"{base}={_number(value)!r}")
    return f"{cls}({', '.join(args)})"


def _number(value: Any) -> Any:
    """A tensor-valued hyper-parameter (torch allows a Tensor lr) as its Python number."""
    return value.item() if hasattr(value, "item") else value
