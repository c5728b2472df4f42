"""Torch7 `.t7` files: a reader for everything `torch.save` writes (the writer tests use: common/testing/t7_writer.py).

The format (torch7's File.lua) is a typed binary serialization: each value starts with an int type tag;
tables, torch objects and functions carry an index so that shared references (nngraph nodes pointing
at each other, tensors viewing one storage) are written once and read back as the same object.

What `load` returns:
- Lua tables: `LuaTable` (a dict with bytes keys for string keys), or `LuaList` when the keys are
  exactly 1..n (index 0 is Lua's 1); both hashable by identity so tables can be keys, as in Lua.
- numbers: int when integral (Lua has only doubles), else float; strings: bytes (`text()` decodes).
- tensors: numpy arrays viewing their storage with the file's offset and strides, so tensors that
  share a storage share memory (train.lua's `getParameters()` views); empty tensors have shape (0,).
  CUDA storages read as their CPU dtype. Storages: 1-D numpy arrays.
- any other class (nn.Linear, nn.gModule, DenseCapModel, ...): `TorchObject` holding its fields.
- Lua functions: `LuaFunction` (bytecode + upvalues), never run.

torchfile (the PyPI reader) is not used: under numpy 2 it fails on every Lua list holding a tensor.
"""
import os
import struct

import numpy as np

from common.checkpoint import first_line
from common.cli import UserError

TYPE_NIL, TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, TYPE_BOOLEAN = 0, 1, 2, 3, 4, 5
TYPE_FUNCTION, LEGACY_TYPE_RECUR_FUNCTION, TYPE_RECUR_FUNCTION = 6, 7, 8

_DTYPES = {"Double": np.float64, "Float": np.float32, "Half": np.float16, "Long": np.int64,
           "Int": np.int32, "Short": np.int16, "Char": np.int8, "Byte": np.uint8}


def _kind(class_name: str, suffix: str):
    """'torch.CudaDoubleTensor' -> 'Double' (and 'torch.CudaTensor' -> 'Float'), or None."""
    if not (class_name.startswith("torch.") and class_name.endswith(suffix)):
        return None
    name = class_name[len("torch."):-len(suffix)]
    if name.startswith("Cuda"):
        name = name[len("Cuda"):] or "Float"
    return name if name in _DTYPES else None


class TorchObject:
    """An instance of a Torch class: its class name (bytes) and its fields (a LuaTable).

    Fields read as attributes or items, by str or bytes: `m.weight`, `m["weight"]`, `m[b"weight"]`;
    a missing field is None, as in Lua.
    """

    def __init__(self, typename, obj=None, version_number=0):
        self._typename = typename.encode() if isinstance(typename, str) else typename
        self._obj = LuaTable() if obj is None else obj
        self._version_number = version_number

    def torch_typename(self) -> bytes:
        return self._typename

    def _field(self, k):
        d = self._obj
        if not isinstance(d, dict):
            return None
        if k in d:
            return d[k]
        if isinstance(k, str):
            return d.get(k.encode())
        return None

    def __getattr__(self, k):
        if k.startswith("__") or k in ("_obj", "_typename", "_version_number"):
            raise AttributeError(k)
        return self._field(k)

    def __getitem__(self, k):
        return self._field(k)

    def __repr__(self):
        keys = list(self._obj)[:8] if isinstance(self._obj, dict) else []
        return f"TorchObject({self._typename.decode(errors='replace')}, fields {keys})"

    __hash__ = object.__hash__


class LuaTable(dict):
    """A Lua table with non-list keys. Hashable by identity (Lua tables can be keys)."""
    __hash__ = object.__hash__


class LuaList(list):
    """A Lua table whose keys were exactly 1..n. Hashable by identity."""
    __hash__ = object.__hash__


class LuaFunction:
    """A serialized Lua function: its bytecode and upvalues (kept, never run)."""

    def __init__(self, bytecode: bytes, upvalues):
        self.bytecode, self.upvalues = bytecode, upvalues

    def __repr__(self):
        return f"LuaFunction({len(self.bytecode)} bytes of bytecode)"


class _Key:
    """A dict key for a value Python cannot hash (a tensor used as a table key)."""

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return id(self.value)

    def __eq__(self, other):
        return isinstance(other, _Key) and other.value is self.value


class _Cut(Exception):
    pass


class _Bad(Exception):
    pass


class _Reader:
    def __init__(self, f, size, long_size=8):
        self.f, self.size, self.long_size = f, size, long_size
        self.memo = {}
        self.building = set()  # table indexes whose contents are still being read
        self.cycles = set()  # ... of which something inside referred back to them

    def raw(self, n):
        b = self.f.read(n)
        if len(b) != n:
            raise _Cut()
        return b

    def int(self):
        return struct.unpack("<i", self.raw(4))[0]

    def long(self):
        return struct.unpack("<q" if self.long_size == 8 else "<i", self.raw(self.long_size))[0]

    def longs(self, n):
        return struct.unpack(f"<{n}{'q' if self.long_size == 8 else 'i'}", self.raw(self.long_size * n))

    def double(self):
        return struct.unpack("<d", self.raw(8))[0]

    def string(self):
        n = self.int()
        if n < 0 or n > self.size:
            raise _Bad(f"string of {n} bytes")
        return self.raw(n)

    def obj(self):
        tag = self.int()
        if tag == TYPE_NIL:
            return None
        if tag == TYPE_NUMBER:
            x = self.double()
            return int(x) if x.is_integer() else x
        if tag == TYPE_BOOLEAN:
            return self.int() == 1
        if tag == TYPE_STRING:
            return self.string()
        if tag == TYPE_FUNCTION:
            return LuaFunction(self.string(), self.obj())
        if tag not in (TYPE_TABLE, TYPE_TORCH, TYPE_RECUR_FUNCTION, LEGACY_TYPE_RECUR_FUNCTION):
            raise _Bad(f"unknown type tag {tag}")
        index = self.int()
        if index in self.memo:
            if index in self.building:
                self.cycles.add(index)
            return self.memo[index]
        if tag == TYPE_TABLE:
            return self.table(index)
        if tag == TYPE_TORCH:
            return self.torch(index)
        fn = LuaFunction(self.string(), None)
        self.memo[index] = fn
        fn.upvalues = self.obj()
        return fn

    def table(self, index):
        n = self.int()
        if n < 0 or n > self.size:
            raise _Bad(f"table of {n} entries")
        t = LuaTable()
        self.memo[index] = t
        self.building.add(index)
        for _ in range(n):
            k = self.obj()
            v = self.obj()
            try:
                hash(k)
            except TypeError:
                k = _Key(k)
            t[k] = v
        self.building.discard(index)
        if t and all(type(k) is int for k in t) and min(t) == 1 and max(t) == len(t):
            lst = LuaList(t[i] for i in range(1, len(t) + 1))
            self.memo[index] = lst
            if index in self.cycles:
                _replace(lst, t, lst)
            return lst
        return t

    def torch(self, index):
        version = self.string()
        if version.startswith(b"V "):
            try:
                version_number = int(float(version[2:]))
            except ValueError:
                raise _Bad(f"bad version string {version[:20]!r}") from None
            class_name = self.string()
        else:  # written before torch7 versioned its classes
            class_name, version_number = version, 0
        name = class_name.decode("latin-1")
        kind = _kind(name, "Tensor")
        if kind:
            a = self.tensor(kind)
            self.memo[index] = a
            return a
        kind = _kind(name, "Storage")
        if kind:
            a = self.storage(kind)
            self.memo[index] = a
            return a
        o = TorchObject(class_name, None, version_number)
        self.memo[index] = o
        self.building.add(index)
        o._obj = self.obj()
        self.building.discard(index)
        return o

    def dtype(self, kind):
        return np.dtype(np.int32) if kind == "Long" and self.long_size == 4 else np.dtype(_DTYPES[kind])

    def storage(self, kind):
        n = self.long()
        dtype = self.dtype(kind)
        if n < 0 or n * dtype.itemsize > self.size:
            raise _Bad(f"storage of {n} elements")
        a = np.empty(n, dtype)
        if n and self.f.readinto(memoryview(a).cast("B")) != a.nbytes:
            raise _Cut()
        return a

    def tensor(self, kind):
        ndim = self.int()
        if ndim < 0 or ndim > 64:
            raise _Bad(f"tensor of {ndim} dimensions")
        sizes = self.longs(ndim) if ndim else ()
        strides = self.longs(ndim) if ndim else ()
        offset = self.long() - 1  # 1-based in the file
        storage = self.obj()
        dtype = self.dtype(kind)
        if ndim == 0 or 0 in sizes:
            return np.zeros(sizes if ndim else (0,), dtype)
        if not isinstance(storage, np.ndarray):
            raise _Bad("tensor without a storage")
        if offset < 0 or min(sizes) < 0 or min(strides) < 0 or \
                offset + sum((s - 1) * st for s, st in zip(sizes, strides)) >= storage.size:
            raise _Bad("tensor reaches past its storage")
        return np.lib.stride_tricks.as_strided(storage[offset:], shape=sizes,
                                               strides=[st * storage.itemsize for st in strides])


def _replace(root, old, new):
    """Point every reference to `old` inside `root` at `new` (a table that became a list mid-read)."""
    seen, stack = set(), [root]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, TorchObject):
            if x._obj is old:
                x._obj = new
            stack.append(x._obj)
        elif isinstance(x, list):
            for i, v in enumerate(x):
                if v is old:
                    x[i] = new
                elif isinstance(v, (list, dict, TorchObject)):
                    stack.append(v)
        elif isinstance(x, dict):
            for k, v in x.items():
                if v is old:
                    x[k] = new
                elif isinstance(v, (list, dict, TorchObject)):
                    stack.append(v)


def load(path, long_size=None):
    """Read a .t7 file (CPU or GPU storages); a file that is not Torch7 gives one UserError line.

    `long_size` 8 is what 64-bit Linux and macOS wrote; 4 (Windows, `torch.load(f, 'b32')`) is tried
    automatically when 8 does not parse.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder, not a .t7 file")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such .t7 file")
    size = os.path.getsize(path)
    if size == 0:
        raise UserError(f"{path}: empty file, not a Torch7 .t7 file")
    errors, fallback = [], None
    for ls in ((long_size,) if long_size else (8, 4)):
        try:
            with open(path, "rb") as f:
                head = f.read(8)
                if head[:1].isdigit() and b"\n" in head:
                    raise UserError(f"{path}: an ASCII-mode .t7 file; re-save it in Lua with "
                                    "torch.save(name, torch.load(name, 'ascii'))")
                f.seek(0)
                obj = _Reader(f, size, ls).obj()
                trailing = f.read(1)
            if not trailing:
                return obj
            fallback = fallback or (obj,)
            errors.append("bytes left after the object")
        except _Cut:
            errors.append("the file ends early: cut short or still downloading")
        except (_Bad, struct.error, ValueError, MemoryError, OverflowError, UnicodeDecodeError) as e:
            errors.append(first_line(e, 100) or type(e).__name__)
    if fallback:
        return fallback[0]
    raise UserError(f"{path}: not a readable Torch7 .t7 file ({errors[0]})")


def typename(obj) -> str:
    return obj.torch_typename().decode() if isinstance(obj, TorchObject) else type(obj).__name__


def get(obj, key, default=None):
    """Field `key` (str) of a table or torch object, whatever the key encoding."""
    d = obj._obj if isinstance(obj, TorchObject) else obj
    if not isinstance(d, dict):
        return default
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    return default


def text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
