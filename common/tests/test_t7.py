"""common.t7.load on files written by real Torch7 (common/tests/lua/make_t7_shapes.lua), checked
against what Lua computed about each file (fixtures/t7/expected.txt)."""
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from common import t7
from common.cli import UserError
from common.testing import t7_writer

FIX = Path(__file__).parent / "fixtures" / "t7"
LUA_TYPES = {np.float64: "torch.DoubleTensor", np.float32: "torch.FloatTensor", np.int64: "torch.LongTensor",
             np.int32: "torch.IntTensor", np.int16: "torch.ShortTensor", np.int8: "torch.CharTensor",
             np.uint8: "torch.ByteTensor"}


def expected():
    out = defaultdict(dict)
    for line in (FIX / "expected.txt").read_text(encoding="utf-8").splitlines():
        case, key, value = line.split("\t")
        out[case][key] = value
    return out


EXP = expected()


def check_tensor(case, name, a):
    e = EXP[case]
    assert LUA_TYPES[a.dtype.type] == e[f"{name}.type"]
    if e[f"{name}.dim"] == "0":
        assert a.size == 0
        return
    assert "x".join(map(str, a.shape)) == e[f"{name}.size"]
    assert "x".join(str(s // a.itemsize) for s in a.strides) == e[f"{name}.stride"]
    assert float(a.astype(np.float64).sum()) == float(e[f"{name}.sum"])
    assert float(a.reshape(-1)[0]) == float(e[f"{name}.first"])


def test_list_of_tensors_the_issues_reproduction():
    obj = t7.load(FIX / "list_of_tensors.t7")
    state = t7.get(obj, "state")
    assert isinstance(state, list) and len(state) == 2
    check_tensor("list_of_tensors", "state1", state[0])
    check_tensor("list_of_tensors", "state2", state[1])


def test_nested_lists():
    obj = t7.load(FIX / "nested_lists.t7")
    assert len(obj) == int(EXP["nested_lists"]["n"])
    check_tensor("nested_lists", "a", obj[0][0])
    check_tensor("nested_lists", "b", obj[1][0][0])
    assert obj[1][1] == 5 and obj[2] == b"end"


def test_array_part_with_fields_and_integer_keys_with_holes():
    m = t7.load(FIX / "mixed_table.t7")
    assert isinstance(m, dict) and not isinstance(m, list)
    assert [m[1], m[2], m[3]] == [10, 20, 30]
    assert t7.get(m, "name") == b"x" and t7.get(m, "flag") is True and t7.get(m, "off") is False
    assert t7.get(m, "pi") == 3.25
    h = t7.load(FIX / "holes.t7")
    assert h == {1: b"a", 2: b"b", 4: b"d", -1: b"neg", 2.5: b"half", 0: b"zero"}


def test_shared_references_and_cycles():
    t = t7.load(FIX / "shared_cycles.t7")
    a = t[1]
    assert a is t[2] and t7.get(t, "b")[0] is a  # one object, referenced three times
    assert t7.get(t, "self") is t and t7.get(a, "parent") is t
    lst = t7.get(t, "lst")
    assert isinstance(lst, list) and lst[0] == 7 and lst[1] is lst  # a list holding itself


def test_views_keep_offsets_strides_and_share_storage():
    v = t7.load(FIX / "views.t7")
    for name in ("base", "m", "narrow", "t", "sel", "expand"):
        check_tensor("views", name, t7.get(v, name))
    base, m = t7.get(v, "base"), t7.get(v, "m")
    assert np.shares_memory(base, m) and np.shares_memory(base, t7.get(v, "narrow"))
    assert np.shares_memory(base, t7.get(v, "storage"))  # the storage itself, read once
    base[0] = 100  # one storage: a write through one view shows through the others
    assert m[0, 0] == 100 and t7.get(v, "t")[0, 0] == 100


def test_every_tensor_type_and_empty_tensors():
    obj = t7.load(FIX / "tensor_types.t7")
    for name in ("double", "float", "long", "int", "short", "char", "byte", "empty", "empty_float"):
        check_tensor("tensor_types", name, t7.get(obj, name))
    assert t7.get(obj, "long")[1] == 2 ** 40
    assert t7.get(obj, "zero_rows").size == 0  # torch7 has no zero-length dimensions: Tensor(0, 3) is empty


def test_utf8_strings():
    obj = t7.load(FIX / "utf8.t7")
    assert t7.text(t7.get(obj, "歌手")) == "汪峰"
    assert [t7.text(s) for s in t7.get(obj, "list")] == ["春天里", "ok"]


def test_custom_classes_with_and_without_namespace_are_plain_objects():
    obj = t7.load(FIX / "custom_classes.t7")
    thing, model, layer = (t7.get(obj, k) for k in ("thing", "model", "layer"))
    assert t7.typename(thing) == "Thing" and t7.typename(model) == "DenseCapLikeModel"
    assert t7.typename(layer) == "mylib.Layer" and layer.size == 7
    assert np.array_equal(thing.weight, np.ones((2, 2))) and thing["name"] == b"thing"
    assert t7.typename(model.inner) == "nn.Linear" and model.inner.weight.shape == (2, 3)
    assert t7.get(model.opt, "k") == 4


@pytest.mark.parametrize("name", ["gmodule_forward", "gmodule_clear"])
def test_nngraph_graph_before_and_after_clear_state(name):
    g = t7.load(FIX / f"{name}.t7")
    assert t7.typename(g) == "nn.gModule"
    nodes = g.forwardnodes
    assert len(nodes) == int(EXP["gmodule"]["nodes"])
    modules = [t7.get(n.data, "module") for n in nodes]
    linears = {m.weight.shape: m for m in modules if m is not None and t7.typename(m) == "nn.Linear"}
    l1, l2 = linears[(3, 4)], linears[(3, 3)]
    x = np.arange(1, 5) / 4
    h = np.tanh(l1.weight @ x + l1.bias)  # the graph, recomputed from the weights read back
    y = l2.weight @ h + l2.bias + h
    assert np.allclose(y, [float(EXP["gmodule"][f"out{i}"]) for i in (1, 2, 3)], atol=1e-12)
    inputs = [t7.get(n.data, "input") for n in nodes if t7.get(n.data, "input") is not None]
    if name == "gmodule_forward":  # a forward leaves each node a list of its input tensors
        assert inputs and all(isinstance(i, list) and isinstance(i[0], np.ndarray) for i in inputs)
    else:
        assert not inputs


def test_batchnorm_of_the_running_std_era():
    bn = t7.load(FIX / "batchnorm_std.t7")
    assert t7.typename(bn) == "nn.SpatialBatchNormalization"
    assert list(bn.running_std) == [1, 2, 4] and bn.running_var is None


def test_functions_and_numbers():
    obj = t7.load(FIX / "function.t7")
    assert isinstance(t7.get(obj, "f"), t7.LuaFunction) and t7.get(obj, "f").bytecode.startswith(b"\x1bLJ")
    assert t7.get(obj, "x") == 0.1 and t7.get(obj, "big") == 2 ** 53 and t7.get(obj, "neg") == -17


def test_four_byte_longs_are_detected():
    obj = t7.load(FIX / "long4.t7")
    assert np.array_equal(t7.get(obj, "w"), np.arange(1, 7).reshape(2, 3)) and t7.get(obj, "n") == 3


def test_cuda_storages_read_as_cpu_arrays(tmp_path):
    # no Torch7 here has cutorch: a CudaTensor file is a FloatTensor file with other class names
    t7_writer.save(tmp_path / "g.t7", {"w": t7_writer.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), "torch.CudaTensor"),
                                "d": t7_writer.Tensor(np.ones(2), "torch.CudaDoubleTensor")})
    obj = t7.load(tmp_path / "g.t7")
    assert t7.get(obj, "w").dtype == np.float32 and t7.get(obj, "w")[1, 2] == 5
    assert t7.get(obj, "d").dtype == np.float64


@pytest.mark.parametrize("content,why", [(b"", "empty file"), (b"PK\x03\x04 a zip file, not t7", "not a readable"),
                                         (None, "ends early"), (b"4\n1\n3\nV 1\n", "ASCII-mode")])
def test_files_that_are_not_torch7_are_one_line(tmp_path, content, why):
    p = tmp_path / "bad.t7"
    p.write_bytes((FIX / "gmodule_forward.t7").read_bytes()[:5000] if content is None else content)
    with pytest.raises(UserError) as e:
        t7.load(p)
    assert why in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UserError, match="no such"):
        t7.load(tmp_path / "missing.t7")
