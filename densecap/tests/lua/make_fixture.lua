--[[ Writes densecap/tests/fixtures/densecap-small.t7 and what densecap's own run_model.lua computes with it.

A DenseCapModel built by densecap's own code (train_opts.lua, models.lua, DenseCapModel.lua,
LocalizationLayer.lua, LanguageModel.lua, torch-rnn's LSTM, stnbhwd's sampler) at small sizes, trained a
few forward_backward + adam steps on one synthetic image, saved as train.lua saves it, then run through
the unmodified run_model.lua on the two fixture images. See README.md for the exact commands.

The only departures from train.lua, all at construction time:
  * loadcaffe.load returns a hand-built net with loadcaffe's VGG-16 layer sequence (13 3x3 convolutions,
    ReLU(true), SpatialMaxPooling(2,2,2,2):ceil(), View, fc6, ReLU, Dropout, fc7, ReLU, Dropout, fc8,
    SoftMax) at small widths, He-initialised (fixed seed) instead of the caffemodel;
  * DenseCapModel:__init hard-codes VGG-16's sizes (opt.input_dim = 512, fc_dim = 4096); those two
    assignments are replaced, in the source text loaded here, by the small widths. Nothing else changes;
    run_model.lua later loads the saved file with the unmodified DenseCapModel.lua;
  * the DataLoader (hdf5) is not run: idx_to_token is built as DataLoader.lua builds it (JSON string keys
    -> integer keys), from a small vocabulary.
]]
require 'torch'
require 'nn'
require 'nngraph'
require 'image'

local HERE = paths.dirname(paths.thisfile())
dofile(paths.concat(HERE, 'stubs.lua'))
local DENSECAP = os.getenv('DENSECAP_DIR')
local OUT = arg[1] or paths.concat(HERE, '..', 'fixtures')

torch.setdefaulttensortype('torch.FloatTensor')   -- as train.lua
torch.manualSeed(123)

local WIDTHS = {4, 4, 6, 6, 8, 8, 8, 12, 12, 12, 16, 16, 16}   -- conv1_1 .. conv5_3
local BLOCKS = {2, 2, 3, 3, 3}
local FC_DIM = 32

LOADCAFFE_NET = function()
  local cnn, nin, i = nn.Sequential(), 3, 1
  for _, n in ipairs(BLOCKS) do
    for _ = 1, n do
      local nout = WIDTHS[i]
      local conv = nn.SpatialConvolution(nin, nout, 3, 3, 1, 1, 1, 1)
      local std = math.sqrt(2 / (9 * nin))
      if i == 1 then std = std / 16 end   -- Caffe-range input (about +-128)
      conv.weight:normal(0, std)
      conv.bias:normal(0, 0.05)
      cnn:add(conv)
      cnn:add(nn.ReLU(true))
      nin, i = nout, i + 1
    end
    cnn:add(nn.SpatialMaxPooling(2, 2, 2, 2, 0, 0):ceil())
  end
  cnn:add(nn.View(-1):setNumInputDims(3))
  cnn:add(nn.Linear(nin * 7 * 7, FC_DIM)); cnn:add(nn.ReLU(true)); cnn:add(nn.Dropout(0.5))
  cnn:add(nn.Linear(FC_DIM, FC_DIM)); cnn:add(nn.ReLU(true)); cnn:add(nn.Dropout(0.5))
  cnn:add(nn.Linear(FC_DIM, 10)); cnn:add(nn.SoftMax())
  return cnn
end

-- DenseCapModel.lua with its two VGG-16 size constants replaced
local src = io.open(DENSECAP .. '/densecap/DenseCapModel.lua'):read('*a')
local n1, n2
src, n1 = src:gsub('opt%.input_dim = 512', 'opt.input_dim = ' .. WIDTHS[#WIDTHS])
src, n2 = src:gsub('fc_dim = 4096', 'fc_dim = ' .. FC_DIM)
assert(n1 == 1 and n2 == 1, 'DenseCapModel.lua is not the expected version')
assert(loadstring(src, '@' .. DENSECAP .. '/densecap/DenseCapModel.lua'))()
package.loaded['densecap.DenseCapModel'] = true
require 'densecap.optim_updates'
local models = require 'models'

-- the vocabulary as DataLoader.lua turns preprocess.py's JSON into idx_to_token
local json_idx_to_token = {['1'] = 'a', ['2'] = 'red', ['3'] = 'blue', ['4'] = 'circle', ['5'] = 'square',
                           ['6'] = 'small', ['7'] = 'big', ['8'] = 'on', ['9'] = 'the', ['10'] = 'left'}
local idx_to_token, V = {}, 0
for k, v in pairs(json_idx_to_token) do idx_to_token[tonumber(k)] = v; V = V + 1 end
local L = 6

local opt = require('train_opts').parse{'-backend', 'nn', '-gpu', '-1', '-rnn_size', '24',
  '-sampler_batch_size', '32', '-learning_rate', '4e-3', '-max_iters', '80',
  '-checkpoint_path', paths.concat(OUT, 'densecap-small.t7')}
opt.seq_length, opt.vocab_size, opt.idx_to_token = L, V, idx_to_token
-- DenseCapModel / LocalizationLayer options that train_opts.lua does not expose (their defaults are sized
-- for VGG-16: 512-d word encodings, 256 RPN filters, anchors up to 724 px)
opt.rnn_encoding_size, opt.rpn_num_filters, opt.anchor_scale = 20, 12, 0.25
local model = models.setup(opt)
local params, grad_params, cnn_params, cnn_grad_params = model:getParameters()

-- one synthetic training image: the wide fixture scene as run_model.lua preprocesses it, three regions
local img = image.scale(image.load(paths.concat(OUT, 'lua_scene_wide.png'), 3), 160):float()
local H, W = img:size(2), img:size(3)
local x = img:view(1, 3, H, W):index(2, torch.LongTensor{3, 2, 1}):mul(255)
x:add(-1, torch.FloatTensor{103.939, 116.779, 123.68}:view(1, 3, 1, 1):expand(1, 3, H, W))
local data = {
  image = x,
  gt_boxes = torch.FloatTensor{{{35, 30, 40, 40}, {120, 75, 40, 40}, {120, 30, 44, 36}}},
  gt_labels = torch.FloatTensor{{{1, 2, 4, 0, 0, 0}, {9, 3, 5, 0, 0, 0}, {1, 7, 5, 8, 9, 10}}},
}
local loss_history, optim_state = {}, {}
for iter = 0, opt.max_iters - 1 do
  grad_params:zero()
  model:training()
  local losses = model:forward_backward(data)
  grad_params:add(opt.weight_decay, params)
  adam(params, grad_params, opt.learning_rate, opt.optim_beta1, opt.optim_beta2, opt.optim_epsilon, optim_state)
  print(string.format('iter %d: total loss %.4f', iter, losses.total_loss))
  loss_history[iter] = losses
end

-- train.lua's checkpoint table and save steps (cudnn is not loaded, so its cudnn.convert(..., nn) is skipped:
-- with -backend nn there are no cudnn modules to convert)
local checkpoint = {opt = opt, iter = opt.max_iters - 1, loss_history = loss_history, results_history = {}}
checkpoint.model = model
model:clearState()
model:float()
torch.save(opt.checkpoint_path, checkpoint)
print('wrote ' .. opt.checkpoint_path)

-- the conv feature map sizes (ceil-mode pooling): a 720x479 input and the two fixture images
local loaded = torch.load(opt.checkpoint_path).model
loaded:evaluate()
local meta = {feature_sizes = {}}
local function trunk_size(h, w)
  local f = loaded.net:get(2):forward(loaded.net:get(1):forward(torch.zeros(1, 3, h, w)))
  return {h, w, f:size(3), f:size(4)}
end
table.insert(meta.feature_sizes, trunk_size(479, 720))
table.insert(meta.feature_sizes, trunk_size(H, W))

-- run_model.lua itself, unmodified, on each image
local cjson = require 'cjson'
local tmp = os.tmpname(); os.remove(tmp); paths.mkdir(tmp)
for _, name in ipairs{'wide', 'tall'} do
  local vis = paths.concat(tmp, name); paths.mkdir(vis)
  local cmd = string.format('cd %s && luajit -e "dofile(\'%s\')" run_model.lua -checkpoint %s -input_image %s ' ..
    '-image_size 160 -gpu -1 -output_vis_dir %s', DENSECAP, paths.concat(HERE, 'stubs.lua'), opt.checkpoint_path,
    paths.concat(OUT, 'lua_scene_' .. name .. '.png'), vis)
  print(cmd)
  local rc = os.execute(cmd)
  assert(rc == 0 or rc == true, 'run_model.lua failed')
  local res = io.open(paths.concat(vis, 'results.json')):read('*a')
  io.open(paths.concat(OUT, 'lua_results_' .. name .. '.json'), 'w'):write(res)
  local saved = image.load(paths.concat(vis, 'lua_scene_' .. name .. '.png'), 3)
  table.insert(meta.feature_sizes, trunk_size(saved:size(2), saved:size(3)))
end
io.open(paths.concat(OUT, 'lua_meta.json'), 'w'):write(cjson.encode(meta))
print('wrote ' .. OUT .. '/lua_results_{wide,tall}.json, lua_meta.json')
