--[[ A small colornet.t7, written by Torch7 itself, and colorize.lua's own outputs for it.

   luajit make_fixture.lua COLORIZE_LUA OUT_DIR     (see README.md next to this file)

COLORIZE_LUA is the original, unmodified colorize.lua (satoshiiizuka/siggraph2016_colorization). This
script builds, with nn + nngraph, a gModule of the topology colorize.lua and the public fine-tuning
scripts rely on, at 1/32 of the paper's widths (random weights, fixed seed):
  forwardnodes[4] low-level, [5] mid-level, [8] global (convs + FC 1024/512), [9] a Sequential of
  Linear(512, 256), ReLU and the two nn.Replicate (modules[3], [4]) that colorize.lua resizes;
  X1 is 224x224 as colorize.lua makes it, the low-level weights are shared by both paths.
It saves {mean = ..., model = ...} twice, as torch.save writes it:
  colornet_cleared.t7   after :clearState() (DoubleTensor weights, Lua's default type)
  colornet_forward.t7   :float() and after a forward, without clearState (nodes hold data.input lists,
                        modules their output / finput buffers); compressed to colornet_forward.t7.xz
writes two deterministic input images (gray.png 61x45, one channel; rgb.png 70x42), saves the network's
output for each as colorize.lua computes it (ab_<image>.t7: {X2 = network input, ab = output}), then runs
colorize.lua in a temporary folder on each image with each model: out_<image>_<model>.png.
]]
require 'nn'
require 'nngraph'
require 'image'

local colorize_lua, out_dir = arg[1], arg[2]
assert(colorize_lua and out_dir, 'usage: luajit make_fixture.lua path/to/colorize.lua OUT_DIR')
local WIDTH, MEAN = 32, 0.4512
local function c(n) return math.max(1, math.floor(n / WIDTH)) end

torch.manualSeed(1234)
local function he(m)  -- He-normal weights so the random network's output is not a flat 0.5
   local fan_in = m.weight:numel() / m.weight:size(1)
   m.weight:normal(0, math.sqrt(2 / fan_in))
   m.bias:normal(0, 0.05)
   return m
end
local function conv(cin, cout, stride, k)
   k = k or 3
   return he(nn.SpatialConvolution(cin, cout, k, k, stride, stride, (k - 1) / 2, (k - 1) / 2))
end

local low = nn.Sequential()
for _, s in ipairs({{1, 64, 2}, {64, 128, 1}, {128, 128, 2}, {128, 256, 1}, {256, 256, 2}, {256, 512, 1}}) do
   low:add(conv(s[1] == 1 and 1 or c(s[1]), c(s[2]), s[3])):add(nn.ReLU(true))
end
local mid = nn.Sequential()
mid:add(conv(c(512), c(512), 1)):add(nn.ReLU(true)):add(conv(c(512), c(256), 1)):add(nn.ReLU(true))
local glob = nn.Sequential()
for _, s in ipairs({2, 1, 2, 1}) do glob:add(conv(c(512), c(512), s)):add(nn.ReLU(true)) end
glob:add(nn.View(-1):setNumInputDims(3))
glob:add(he(nn.Linear(c(512) * 7 * 7, c(1024)))):add(nn.ReLU(true))
glob:add(he(nn.Linear(c(1024), c(512)))):add(nn.ReLU(true))
local tile = nn.Sequential()
tile:add(he(nn.Linear(c(512), c(256)))):add(nn.ReLU(true))
tile:add(nn.Replicate(28, 3)):add(nn.Replicate(28, 4))
local fusion = nn.Sequential():add(conv(c(256) * 2, c(256), 1, 1)):add(nn.ReLU(true))
local color = nn.Sequential()
color:add(conv(c(256), c(128), 1)):add(nn.ReLU(true)):add(nn.SpatialUpSamplingNearest(2))
color:add(conv(c(128), c(64), 1)):add(nn.ReLU(true)):add(conv(c(64), c(64), 1)):add(nn.ReLU(true))
color:add(nn.SpatialUpSamplingNearest(2)):add(conv(c(64), c(32), 1)):add(nn.ReLU(true))
local last = conv(c(32), 2, 1)
last.weight:mul(4)  -- a wide spread of ab, so colour differences show in the output
color:add(last):add(nn.Sigmoid())

-- the graph's two inputs are the two low-level networks themselves (no Identity nodes): that is what
-- puts low, mid, global and the tiling at forwardnodes 4, 5, 8 and 9
local low_global = low:clone('weight', 'bias', 'gradWeight', 'gradBias')  -- shared weights
local l2 = low()
local m = mid(l2)
local l1 = low_global()
local g = glob(l1)
local t = tile(g)
local fused = fusion(nn.JoinTable(2)({m, t}))
local model = nn.gModule({l1, l2}, {color(fused)})

-- the indices colorize.lua and the fine-tuning scripts use
local fn = model.forwardnodes
assert(fn[9].data.module == tile and torch.type(fn[9].data.module.modules[3]) == 'nn.Replicate'
       and torch.type(fn[9].data.module.modules[4]) == 'nn.Replicate', 'forwardnodes[9] is not the tiling')
assert(fn[8].data.module == glob, 'forwardnodes[8] is not the global network')
assert(fn[5].data.module == mid, 'forwardnodes[5] is not the mid-level network')
assert(fn[4].data.module == low or fn[4].data.module == low_global, 'forwardnodes[4] is not the low-level')

-- inputs: smooth deterministic patterns (no RNG), a one-channel and an RGB png
local function pattern(h, w, ch)
   local t = torch.Tensor(ch, h, w)
   for k = 1, ch do for y = 1, h do for x = 1, w do
      t[k][y][x] = 0.5 + 0.45 * math.sin(x * (0.11 + 0.07 * k) + y * 0.05 * k) * math.cos(y * 0.13 + k)
   end end end
   return t
end
image.save(out_dir .. '/gray.png', pattern(45, 61, 1))
image.save(out_dir .. '/rgb.png', pattern(42, 70, 3))

-- the network's output on each image, computed with colorize.lua's own steps
local fmodel = model:clone():float()
for _, name in ipairs({'gray', 'rgb'}) do
   local I = image.load(out_dir .. '/' .. name .. '.png')
   if I:size(1) == 3 then I = image.rgb2y(I) end
   local X2 = image.scale(I, torch.round(I:size(3) / 8) * 8, torch.round(I:size(2) / 8) * 8):add(-MEAN):float()
   local X1 = image.scale(X2, 224, 224):float()
   X1 = X1:reshape(1, X1:size(1), X1:size(2), X1:size(3))
   X2 = X2:reshape(1, X2:size(1), X2:size(2), X2:size(3))
   fmodel.forwardnodes[9].data.module.modules[3].nfeatures = X2:size(3) / 8
   fmodel.forwardnodes[9].data.module.modules[4].nfeatures = X2:size(4) / 8
   local ab = fmodel:forward({X1, X2}):clone()
   torch.save(out_dir .. '/ab_' .. name .. '.t7', {X2 = X2:clone(), ab = ab})
end

-- fmodel now holds the forward state of the rgb image: saved as is, then the cleared double model
torch.save(out_dir .. '/colornet_forward.t7', {mean = MEAN, model = fmodel})
model:clearState()
torch.save(out_dir .. '/colornet_cleared.t7', {mean = MEAN, model = model})

-- colorize.lua itself, unmodified, run from a temporary folder: `th colorize.lua in out model`
local lua = arg[-1]
local function succeeded(r) return r == 0 or r == true end  -- Lua 5.1 / 5.2 os.execute
local tmp = os.tmpname()
os.remove(tmp)
assert(succeeded(os.execute('mkdir -p ' .. tmp .. ' && cp ' .. colorize_lua .. ' ' .. tmp .. '/colorize.lua')))
local abs = io.popen('cd ' .. out_dir .. ' && pwd'):read('*l')
for _, name in ipairs({'gray', 'rgb'}) do
   for _, which in ipairs({'cleared', 'forward'}) do
      local cmd = string.format('cd %s && %s colorize.lua %s/%s.png %s/out_%s_%s.png %s/colornet_%s.t7',
                                tmp, lua, abs, name, abs, name, which, abs, which)
      print(cmd)
      assert(succeeded(os.execute(cmd)), 'colorize.lua failed')
   end
end
os.execute('rm -rf ' .. tmp)
-- the forward state is mostly unfolded 224x224 inputs (finput): 4.6 MB raw, 0.7 MB as .xz (the tests unpack it)
assert(succeeded(os.execute('xz -9 -f ' .. out_dir .. '/colornet_forward.t7')), 'xz failed')
print('done')
