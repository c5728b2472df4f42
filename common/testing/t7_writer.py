"""A small `.t7` writer for test fixtures that look like Torch7's (CUDA storages, cudnn classes): tests only.

Files the original Lua code wrote are the real fixtures (see each experiment's tests/lua/); this writer
covers what cannot be made here without a GPU. `common.t7.load` reads what it writes.
"""
import struct

import numpy as np

from common.t7 import TYPE_BOOLEAN, TYPE_NIL, TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, TorchObject


class Tensor:
    """A numpy array to be written as a torch tensor of the given class (e.g. 'torch.CudaTensor')."""

    _STORAGE = {"torch.DoubleTensor": ("torch.DoubleStorage", np.float64),
                "torch.FloatTensor": ("torch.FloatStorage", np.float32),
                "torch.CudaTensor": ("torch.CudaStorage", np.float32),
                "torch.CudaDoubleTensor": ("torch.CudaDoubleStorage", np.float64),
                "torch.LongTensor": ("torch.LongStorage", np.int64),
                "torch.IntTensor": ("torch.IntStorage", np.int32),
                "torch.ByteTensor": ("torch.ByteStorage", np.uint8)}

    def __init__(self, array, tensor_type=None):
        array = np.asarray(array)
        if tensor_type is None:
            tensor_type = {np.dtype(np.float32): "torch.FloatTensor", np.dtype(np.int64): "torch.LongTensor",
                           np.dtype(np.int32): "torch.IntTensor", np.dtype(np.uint8): "torch.ByteTensor"
                           }.get(array.dtype, "torch.DoubleTensor")
        self.storage_type, dtype = self._STORAGE[tensor_type]
        self.tensor_type = tensor_type
        self.array = np.ascontiguousarray(array, dtype=dtype)


class _Writer:
    def __init__(self, f, tensor_type):
        self.f, self.tensor_type, self.memo = f, tensor_type, {}

    def int(self, v):
        self.f.write(struct.pack("<i", v))

    def long(self, v):
        self.f.write(struct.pack("<q", v))

    def string(self, s):
        b = s.encode() if isinstance(s, str) else bytes(s)
        self.int(len(b))
        self.f.write(b)

    def _index(self, obj, type_tag):
        """Write the tag and index; True if the object was already written (a reference)."""
        self.int(type_tag)
        key = id(obj)
        if key in self.memo:
            self.int(self.memo[key][0])
            return True
        self.memo[key] = (len(self.memo) + 1, obj)  # keep obj alive so ids stay unique
        self.int(self.memo[key][0])
        return False

    def obj(self, v):
        if v is None:
            self.int(TYPE_NIL)
        elif isinstance(v, (bool, np.bool_)):
            self.int(TYPE_BOOLEAN)
            self.int(int(v))
        elif isinstance(v, (int, float, np.integer, np.floating)):
            self.int(TYPE_NUMBER)
            self.f.write(struct.pack("<d", float(v)))
        elif isinstance(v, (str, bytes)):
            self.int(TYPE_STRING)
            self.string(v)
        elif isinstance(v, np.ndarray):
            self.tensor(Tensor(v, self.tensor_type if v.dtype.kind == "f" else None), v)
        elif isinstance(v, Tensor):
            self.tensor(v, v)
        elif isinstance(v, TorchObject):
            if self._index(v, TYPE_TORCH):
                return
            self.string(f"V {v._version_number or 1}")
            self.string(v._typename)
            self.obj(v._obj)
        elif isinstance(v, (dict, list, tuple)):
            if self._index(v, TYPE_TABLE):
                return
            items = v.items() if isinstance(v, dict) else enumerate(v, 1)
            items = list(items)
            self.int(len(items))
            for k, x in items:
                self.obj(k)
                self.obj(x)
        else:
            raise TypeError(f"cannot write {type(v).__name__} to .t7")

    def tensor(self, t, key):
        if self._index(key, TYPE_TORCH):
            return
        a = t.array
        self.string("V 1")
        self.string(t.tensor_type)
        self.int(a.ndim)
        for s in a.shape:
            self.long(s)
        for s in (np.array(a.strides) // max(a.itemsize, 1)) if a.ndim else []:
            self.long(int(s))
        self.long(1)  # storageOffset, 1-based
        self.int(TYPE_TORCH)
        self.int(len(self.memo) + 1)
        self.memo[("storage", id(key))] = (len(self.memo) + 1, a)
        self.string("V 1")
        self.string(t.storage_type)
        self.long(a.size)
        self.f.write(a.tobytes())


def save(path, obj, tensor_type="torch.DoubleTensor"):
    """Write `obj` (dicts, lists, numbers, strings, numpy arrays, Tensor, TorchObject) as a .t7 file.

    Float numpy arrays become `tensor_type` (e.g. 'torch.CudaTensor' for a GPU-style checkpoint).
    """
    with open(path, "wb") as f:
        _Writer(f, tensor_type).obj(obj)
