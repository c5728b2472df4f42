-- Writes one small .t7 file per shape of data that `torch.save` produces, with real Torch7, and
-- `expected.txt`: what Lua itself computes about each file's contents, for common/tests/test_t7.py.
-- Re-run (see README.md here):  OPENBLAS_NUM_THREADS=1 luajit make_t7_shapes.lua OUT_DIR
require 'torch'
require 'nn'
require 'nngraph'

local out = arg[1] or '.'
torch.manualSeed(123)
torch.setdefaulttensortype('torch.DoubleTensor')
local expected = assert(io.open(out .. '/expected.txt', 'w'))
local function expect(case, key, value)
  if type(value) == 'number' then value = string.format('%.17g', value) end
  expected:write(case, '\t', key, '\t', tostring(value), '\n')
end
local function save(case, obj) torch.save(out .. '/' .. case .. '.t7', obj) end
local function describe(case, name, t)
  expect(case, name .. '.type', torch.type(t))
  expect(case, name .. '.dim', t:dim())
  local size, stride = {}, {}
  for d = 1, t:dim() do size[d] = t:size(d); stride[d] = t:stride(d) end
  expect(case, name .. '.size', table.concat(size, 'x'))
  expect(case, name .. '.stride', table.concat(stride, 'x'))
  if t:nElement() > 0 then
    expect(case, name .. '.sum', t:double():sum())
    expect(case, name .. '.first', t:double():contiguous():view(-1)[1])  -- 1-based
    expect(case, name .. '.offset', t:storageOffset() - 1)
  end
end

-- 1. the issue's reproduction: a list holding tensors (torchfile under numpy 2 fails on it)
do
  local obj = {state = {torch.zeros(2), torch.ones(3)}}
  save('list_of_tensors', obj)
  describe('list_of_tensors', 'state1', obj.state[1]); describe('list_of_tensors', 'state2', obj.state[2])
end

-- 2. nested lists of tensors and numbers
do
  local obj = {{torch.range(1, 3)}, {{torch.Tensor{4.5}}, 5}, 'end'}
  save('nested_lists', obj)
  describe('nested_lists', 'a', obj[1][1]); describe('nested_lists', 'b', obj[2][1][1])
  expect('nested_lists', 'n', #obj)
end

-- 3. an array part and fields in one table; 4. integer keys with holes; negative and float keys
do
  save('mixed_table', {10, 20, 30, name = 'x', flag = true, off = false, pi = 3.25})
  save('holes', {[1] = 'a', [2] = 'b', [4] = 'd', [-1] = 'neg', [2.5] = 'half', [0] = 'zero'})
end

-- 5. shared references and cycles
do
  local a = {x = 1}
  local t = {a, a, b = {a}}
  t.self = t
  a.parent = t
  local lst = {7}
  lst[2] = lst  -- a list that holds itself
  t.lst = lst
  save('shared_cycles', t)
end

-- 6. views (offsets, strides, transposes, expand) and storages shared between tensors
do
  local base = torch.range(1, 12)
  local m = base:view(3, 4)
  local obj = {base = base, m = m, narrow = m:narrow(2, 2, 2), t = m:t(), sel = m:select(1, 3),
               expand = torch.range(1, 3):view(3, 1):expand(3, 4), storage = base:storage()}
  save('views', obj)
  for _, k in ipairs{'base', 'm', 'narrow', 't', 'sel', 'expand'} do describe('views', k, obj[k]) end
end

-- 7. every CPU tensor type, and empty tensors
do
  local obj = {double = torch.DoubleTensor{1.5, -2}, float = torch.FloatTensor{1.25, 3},
               long = torch.LongTensor{-3, 2^40}, int = torch.IntTensor{-7, 9}, short = torch.ShortTensor{-300, 300},
               char = torch.CharTensor{-5, 5}, byte = torch.ByteTensor{0, 255},
               empty = torch.Tensor(), empty_float = torch.FloatTensor(), zero_rows = torch.Tensor(0, 3):zero()}
  save('tensor_types', obj)
  for _, k in ipairs{'double', 'float', 'long', 'int', 'short', 'char', 'byte', 'empty', 'empty_float'} do
    describe('tensor_types', k, obj[k])
  end
end

-- 8. UTF-8 strings (values and keys)
save('utf8', {['歌手'] = '汪峰', list = {'春天里', 'ok'}})

-- 9. custom classes, with and without a namespace (read as plain objects with their fields)
do
  local Thing = torch.class('Thing')
  function Thing:__init() self.weight = torch.ones(2, 2); self.name = 'thing' end
  local Model = torch.class('DenseCapLikeModel', 'nn.Module')
  function Model:__init() nn.Module.__init(self); self.inner = nn.Linear(3, 2); self.opt = {k = 4} end
  mylib = {}  -- a namespace must exist as a global table before torch.class uses it
  local Layer = torch.class('mylib.Layer', 'nn.Module')
  function Layer:__init() nn.Module.__init(self); self.size = 7 end
  -- torch.class returns the metatable; the constructor is the global of the class's name
  save('custom_classes', {thing = _G.Thing(), model = _G.DenseCapLikeModel(), layer = mylib.Layer()})
end

-- 10. nngraph graphs after a forward, before and after clearState (nodes hold input lists then)
do
  local x = nn.Identity()()
  local h = nn.Tanh()(nn.Linear(4, 3)(x))
  local y = nn.CAddTable()({nn.Linear(3, 3)(h), h})
  local g = nn.gModule({x}, {y})
  local input = torch.range(1, 4):div(4)
  local out = g:forward(input)
  save('gmodule_forward', g)
  for i = 1, 3 do expect('gmodule', 'out' .. i, out[i]) end
  expect('gmodule', 'nodes', #g.forwardnodes)
  g:clearState()
  save('gmodule_clear', g)
end

-- 11. BatchNorm of the running_std era (2015 nn stored running_std, not running_var)
do
  local bn = nn.SpatialBatchNormalization(3)
  bn.running_std = torch.Tensor{1, 2, 4}
  bn.running_var = nil
  save('batchnorm_std', bn)
end

-- 12. a Lua function in a table, and a number that is not an integer
save('function', {f = function(v) return v + 1 end, x = 0.1, big = 2^53, neg = -17})

-- 13. a file written with 4-byte longs (Windows, `torch.load(f, 'b32')`)
do
  local f = torch.DiskFile(out .. '/long4.t7', 'w'):binary()
  f:longSize(4)
  f:writeObject({w = torch.range(1, 6):view(2, 3), n = 3})
  f:close()
end

expected:close()
print('wrote fixtures to ' .. out)
