"""Reading PyTorch checkpoints (`torch.save` files, e.g. PyTorch Lightning's `.ckpt`) without running their code.

A checkpoint is a pickle, and unpickling can call any function the file names. So:
1. `torch.load(weights_only=True)`: torch's own restricted unpickler (tensors, dicts, lists, numbers, strings).
2. If the file also names other classes (a Lightning callback's state, hyper-parameters, numpy scalars), that
   refuses the whole file. Then we unpickle it once more with our own restricted unpickler: torch's tensor
   rebuild functions and a few plain containers are allowed; any other class or function becomes an inert
   `Placeholder` that is never called (the opcodes that would call it push another placeholder instead), so
   nothing the file names ever runs. Names that exist to run code (os.system, eval, subprocess...) make us
   refuse the file outright, with a clear message.
Both read the tensors through a memory map (`mmap=True`): a 500 MB checkpoint costs only the pages we copy.
"""

from __future__ import annotations

import _compat_pickle
import os
import pickle
import pickletools
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch


class CheckpointError(ValueError):
    """A file that is not a readable PyTorch checkpoint."""


class UnsafeCheckpoint(CheckpointError):
    """A checkpoint that asks to run code; refused before anything in it ran."""


class Placeholder:
    """Stands for a class or function named in a checkpoint that we do not load. Not callable; the pickle
    opcodes that would call it or fill it in (REDUCE, NEWOBJ, BUILD, SETITEM, APPEND) leave it inert."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<not loaded: {self.name}>"

    def __setstate__(self, state) -> None:
        pass

    def __setitem__(self, key, value) -> None:
        pass

    def append(self, item) -> None:
        pass

    def extend(self, items) -> None:
        pass


def _allowed() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "complex"): complex,
        ("_codecs", "encode"): __import__("_codecs").encode,  # how protocol 2 stores bytes
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch.serialization", "_get_layout"): torch.serialization._get_layout,
        ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):
        if hasattr(torch._utils, name):
            allowed[("torch._utils", name)] = getattr(torch._utils, name)
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[("torch", name)] = getattr(torch, name)
    return allowed


ALLOWED = _allowed()
# Globals that exist to run code, open files or import modules: a weights file has no business naming them.
# (Safety does not rest on this list: anything not in ALLOWED is a never-called placeholder anyway. The list
# makes a malicious file fail loudly instead of loading with its payload silently dropped.)
DANGEROUS_MODULES = {
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "shutil", "socket", "importlib", "runpy", "pty",
    "ctypes", "pickle", "_pickle", "marshal", "types", "code", "codeop", "pydoc", "webbrowser", "multiprocessing",
    "signal", "asyncio", "operator", "functools", "io", "_io", "tempfile", "commands", "platform", "pdb", "bdb",
    "timeit", "cProfile", "profile", "trace", "inspect", "threading", "_thread", "builtins", "__builtin__",
    "torch.hub", "torch.jit", "torch.serialization", "torch.package", "numpy.testing", "dill", "cloudpickle",
}


def _dangerous(module: str) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in DANGEROUS_MODULES for i in range(1, len(parts) + 1))


class RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler, with `find_class` limited to ALLOWED and calls to placeholders suppressed."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str):
        if self.proto < 3 and self.fix_imports:  # Python 2 names, as the standard find_class maps them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if _dangerous(module):
            raise UnsafeCheckpoint(f"it names {module}.{name}, which can run code")
        return Placeholder(f"{module}.{name}")

    def _call(self, func, args, kwargs=None):
        if isinstance(func, Placeholder):
            return Placeholder(f"{func.name}(...)")
        if not any(func is f for f in ALLOWED.values()):
            raise UnsafeCheckpoint(f"it calls {func!r}, which is not a tensor or container constructor")
        return func(*args, **(kwargs or {}))

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, args) if isinstance(cls, Placeholder) else self._new(cls, args))

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, args) if isinstance(cls, Placeholder) else self._new(cls, args, kwargs))

    def _new(self, cls, args, kwargs=None):
        if not (isinstance(cls, type) and any(cls is f for f in ALLOWED.values())):
            raise UnsafeCheckpoint(f"it constructs {cls!r}, which is not a tensor or container type")
        return cls.__new__(cls, *args, **(kwargs or {}))

    def _instantiate(self, klass, args):  # INST and OBJ (protocols 0 and 1)
        self.append(self._call(klass, args))

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex


MAX_ALLOCATION = 64 * 2**20  # bytes a checkpoint may ask one constructor for (a 35-byte file asked for 2 GB)
_INT_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"}


def scan_pickle(stream) -> None:
    """Read the pickle opcodes of `stream` (a file object or bytes; nothing is run or built) and refuse one
    that names code to run (the same message whichever loader would have read it), or bytearray with a
    size over MAX_ALLOCATION: torch's own restricted unpickler allows bytearray(n), and even reads a legacy
    file's first pickle before it knows it is no checkpoint."""
    names, largest = [], 0
    try:
        for op, arg, _ in pickletools.genops(stream):
            if op.name == "GLOBAL":
                module, _, name = arg.partition(" ")
            elif op.name == "STACK_GLOBAL" and len(names) >= 2:
                module, name = names[-2], names[-1]  # pushed just before (as pickle writes them)
            else:
                module = name = ""
            if module:
                # Python 2 names (as protocols 0-2 write them), mapped as the unpicklers map them
                module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
                module = _compat_pickle.IMPORT_MAPPING.get(module, module)
                if _dangerous(module) and (module, name) not in ALLOWED:
                    raise UnsafeCheckpoint(f"refused: it names {module}.{name}, which can run code. A checkpoint "
                                           "should only hold weights; nothing in it was run")
            if isinstance(arg, str):
                names.append(arg)
            elif op.name in _INT_OPS and isinstance(arg, int):
                largest = max(largest, arg)
    except UnsafeCheckpoint:
        raise
    except Exception:
        return  # not a well-formed pickle: the loaders below say so
    if largest > MAX_ALLOCATION and any("bytearray" in n for n in names):
        raise UnsafeCheckpoint(f"refused: it asks for a bytearray of {largest:,} bytes; a checkpoint should "
                               "only hold weights, and nothing in it was run")


# What torch.load calls a "pickle module": anything with an Unpickler.
_restricted_pickle = types.ModuleType("tad_daemon_restricted_pickle")
_restricted_pickle.Unpickler = RestrictedUnpickler


def load_checkpoint(path: str | os.PathLike, check_crc: bool = True):
    """The object a checkpoint holds (for Lightning: a dict with `state_dict`), tensors memory-mapped.

    `check_crc` reads the whole file once to check each zip record's CRC-32 (torch does not when mapping
    it), so a damaged copy is refused rather than converted into a model that only makes noise; skip it
    for a file already verified another way. Raises UnsafeCheckpoint for a file that asks to run code,
    CheckpointError for one that cannot be read.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(4)
        if head == b"PK\x03\x04":
            raise CheckpointError("a damaged PyTorch checkpoint: its zip archive is cut short (incomplete copy?)")
        if head[:1] != pickle.PROTO:
            raise CheckpointError("not a PyTorch checkpoint (neither torch's zip format nor a pickle)")
        with open(path, "rb") as f:
            for _ in range(4):  # a legacy file is a few pickles (magic number, version, system info, data)
                scan_pickle(f)
        # Before torch 1.6 checkpoints were a bare pickle stream; only torch's own restricted reader for those.
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            raise CheckpointError("not a readable PyTorch checkpoint (an old-format file holding more than "
                                  "weights, or a damaged one)") from None
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith("data.pkl") and archive.getinfo(member).file_size < 256 * 2**20:
                    scan_pickle(archive.read(member))
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"a damaged PyTorch checkpoint ({_short(e)})") from None
    if check_crc:
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise CheckpointError(f"a damaged PyTorch checkpoint ({_short(e)})") from None
        if damaged:
            raise CheckpointError(f"a damaged PyTorch checkpoint: {damaged} fails its checksum")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        pass  # it names something beyond plain data: try our own restricted unpickler below
    except Exception as e:
        raise CheckpointError(f"not a readable PyTorch checkpoint ({_short(e)})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=True, pickle_module=_restricted_pickle)
    except UnsafeCheckpoint as e:
        raise UnsafeCheckpoint(f"refused: {e}. A checkpoint should only hold weights; nothing in it was run") from None
    except Exception as e:
        raise CheckpointError(f"not a readable PyTorch checkpoint ({_short(e)})") from None


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
