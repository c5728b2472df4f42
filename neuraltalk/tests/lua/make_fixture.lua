--[[ Small neuraltalk2 checkpoints written by neuraltalk2's own code, and what that code computes with them.

Run from a checkout of karpathy/neuraltalk2 (see README.md beside this file):
    cd /tmp/neuraltalk2 && luajit THIS_FILE OUT_DIR IMAGES_DIR

Writes into OUT_DIR:
  model_id1-501-1448236541.t7          the checkpoint table as train.lua saves it (opt from train.lua's own
                                        CmdLine, iter, histories, protos = {lm = thin_lm, cnn = thin_cnn}, vocab);
                                        weights are views into the flat storages of getParameters()
  model_id1-501-1448236541.t7_cpu.t7   that file after convert_checkpoint_gpu_to_cpu.lua (run itself, with the
                                        CUDA packages and its fb.debugger call stubbed: there is no GPU here)
  lua_outputs.t7                       per image of IMAGES_DIR, in DataLoaderRaw's order: file names, the 256x256
                                        image.scale output, the CNN features, greedy (sample_max 1) and beam-2
                                        sequences, log-probabilities and captions, for both checkpoints
  captions.txt                         the same captions, readable

The CNN is loadcaffe's VGG-16 layer sequence (13 conv/ReLU, 5 max-pool, View, fc6/relu/drop, fc7/relu/drop,
fc8, SoftMax) at small widths, He-initialised (a pretrained net's scale), then cut by net_utils.build_cnn
(backend nn). The LanguageModel is misc/LanguageModel.lua; it is trained for a few iterations with
train.lua's loss (FeatExpander, LanguageModelCriterion) and misc/optim_updates.lua's adam on fixed
captions, so the three images get different captions.
]]
require 'torch'
require 'nn'
require 'nngraph'
require 'image'

local out_dir, images_dir = arg[1], arg[2]
assert(out_dir and images_dir, 'usage: luajit make_fixture.lua OUT_DIR IMAGES_DIR (run inside neuraltalk2/)')

-- misc/utils.lua requires cjson for its json helpers, which this script does not call
package.preload['cjson'] = function() return {} end
-- misc/DataLoaderRaw.lua requires lfs but lists the folder with paths.files
package.preload['lfs'] = function() return {} end
-- `th` (trepl) provided penlight's path as a global; plain luajit does not
path = path or {join = paths.concat}
local utils = require 'misc.utils'
require 'misc.LanguageModel'
local net_utils = require 'misc.net_utils'
require 'misc.optim_updates'
require 'misc.DataLoaderRaw'

-- train.lua's own options (its CmdLine section, run as is), with small sizes
local src = io.open('train.lua'):read('*a')
local a = src:find('cmd = torch.CmdLine()', 1, true)
local b = src:find('local opt = cmd:parse(arg)', 1, true)
local opt = loadstring(src:sub(a, b - 1) .. ' return cmd')():parse{
  '-rnn_size', '24', '-input_encoding_size', '16', '-batch_size', '3', '-seq_per_img', '2',
  '-learning_rate', '2e-2', '-backend', 'nn', '-gpuid', '-1', '-id', '1', '-max_iters', '501',
  '-save_checkpoint_every', '501'}
torch.manualSeed(opt.seed)
torch.setdefaulttensortype('torch.FloatTensor')

-- the vocabulary as DataLoader:getVocab returns it (json: string keys)
local words = {'a', 'cat', 'cup', 'of', 'coffee', 'man', 'in', 'space', 'suit', 'on', 'table', 'UNK'}
local vocab = {}
for i, w in ipairs(words) do vocab[tostring(i)] = w end
local seq_length = 8

-- loadcaffe's VGG_ILSVRC_16_layers at small widths
local function he(conv)
  conv.weight:normal(0, math.sqrt(2 / (conv.kW * conv.kH * conv.nInputPlane)))
  conv.bias:zero()
  return conv
end
local cnn_raw = nn.Sequential()
local widths = {{3, 4, 4}, {4, 8, 8}, {8, 8, 8, 8}, {8, 8, 8, 8}, {8, 8, 8, 8}}
for _, block in ipairs(widths) do
  for j = 1, #block - 1 do
    cnn_raw:add(he(nn.SpatialConvolution(block[j], block[j + 1], 3, 3, 1, 1, 1, 1)))
    cnn_raw:add(nn.ReLU(true))
  end
  cnn_raw:add(nn.SpatialMaxPooling(2, 2, 2, 2, 0, 0):ceil())
end
cnn_raw:add(nn.View(-1):setNumInputDims(3))
local fc6 = nn.Linear(8 * 7 * 7, 32)
fc6.weight:normal(0, math.sqrt(2 / (8 * 7 * 7)))
cnn_raw:add(fc6):add(nn.ReLU(true)):add(nn.Dropout(0.5))
local fc7 = nn.Linear(32, 4096)
fc7.weight:normal(0, math.sqrt(2 / 32))
cnn_raw:add(fc7):add(nn.ReLU(true)):add(nn.Dropout(0.5))
cnn_raw:add(nn.Linear(4096, 10)):add(nn.SoftMax())

-- train.lua's model construction (lines 105-151)
local protos = {}
protos.lm = nn.LanguageModel{vocab_size = #words, input_encoding_size = opt.input_encoding_size,
                             rnn_size = opt.rnn_size, num_layers = 1, dropout = opt.drop_prob_lm,
                             seq_length = seq_length, batch_size = opt.batch_size * opt.seq_per_img}
protos.cnn = net_utils.build_cnn(cnn_raw, {encoding_size = opt.input_encoding_size, backend = 'nn'})
protos.expander = nn.FeatExpander(opt.seq_per_img)
protos.crit = nn.LanguageModelCriterion()
local params, grad_params = protos.lm:getParameters()
local cnn_params, cnn_grad_params = protos.cnn:getParameters()
local thin_lm = protos.lm:clone()
thin_lm.core:share(protos.lm.core, 'weight', 'bias')
thin_lm.lookup_table:share(protos.lm.lookup_table, 'weight', 'bias')
local thin_cnn = protos.cnn:clone('weight', 'bias')
net_utils.sanitize_gradients(thin_cnn)
for _, v in pairs(thin_lm:getModulesList()) do net_utils.sanitize_gradients(v) end
protos.lm:createClones()

-- the images, as DataLoaderRaw gives them (image.load 3 channels byte, image.scale 256x256 bilinear)
local loader = DataLoaderRaw{folder_path = images_dir, coco_json = ''}
local n = loader.N
local batch = loader:getBatch{batch_size = n}
local scaled = batch.images:clone()
local files = {}
for k = 1, n do files[k] = paths.basename(batch.infos[k].file_path) end

-- a few training iterations (train.lua's lossFun, frozen CNN), image k -> captions[k]
local captions = {{'a cat on a table', 'a cat'}, {'a cup of coffee on a table', 'a cup of coffee'},
                  {'a man in a space suit', 'a man in space'}}
local ix = {}
for i, w in ipairs(words) do ix[w] = i end
local labels = torch.LongTensor(seq_length, n * opt.seq_per_img):zero()
for k = 1, n do
  local name = files[k]
  local which = name:find('cat') and 1 or name:find('coffee') and 2 or 3
  for s = 1, opt.seq_per_img do
    local t = 0
    for w in captions[which][s]:gmatch('%S+') do t = t + 1; labels[t][(k - 1) * opt.seq_per_img + s] = ix[w] end
  end
end
local optim_state = {}
local iters = tonumber(os.getenv("ITERS") or 40)
for iter = 1, iters do
  protos.cnn:evaluate() -- frozen CNN without its dropout: 3 images, so the captions can tell them apart
  protos.lm:training()
  grad_params:zero()
  local imgs = net_utils.prepro(scaled:clone(), true, false)
  local feats = protos.cnn:forward(imgs)
  local expanded_feats = protos.expander:forward(feats)
  local logprobs = protos.lm:forward{expanded_feats, labels}
  local loss = protos.crit:forward(logprobs, labels)
  local dlogprobs = protos.crit:backward(logprobs, labels)
  protos.lm:backward({expanded_feats, labels}, dlogprobs)
  grad_params:clamp(-opt.grad_clip, opt.grad_clip)
  adam(params, grad_params, opt.learning_rate, opt.optim_alpha, opt.optim_beta, opt.optim_epsilon, optim_state)
  if iter % 10 == 0 then print(string.format('iter %d: %f', iter, loss)) end
end

-- train.lua's checkpoint (lines 139-174)
local checkpoint = {opt = opt, iter = 501, loss_history = {[500] = 1.5}, val_loss_history = {[501] = 1.6},
                    val_predictions = {{image_id = 1, caption = 'a cat'}}, val_lang_stats_history = {}}
checkpoint.protos = {lm = thin_lm, cnn = thin_cnn}
checkpoint.vocab = vocab
local gpu_name = paths.concat(out_dir, 'model_id1-501-1448236541.t7')
torch.save(gpu_name, checkpoint)
print('wrote ' .. gpu_name)

-- convert_checkpoint_gpu_to_cpu.lua, run as is (no GPU here: its CUDA packages and debugger are stubbed)
package.preload['cutorch'] = function() cutorch = {setDevice = function() end}; return cutorch end
package.preload['cunn'] = function() return {} end
package.preload['cudnn'] = function() return {} end
package.preload['fb.debugger'] = function() return {enter = function() end} end
local saved_arg = arg
arg = {gpu_name}
dofile('convert_checkpoint_gpu_to_cpu.lua')
arg = saved_arg

-- eval.lua's path (eval_split: prepro without augmentation, cnn:forward, lm:sample) on both files
local outputs = {files = files, scaled = scaled}
local text = {}
for _, which in ipairs{{'train', gpu_name}, {'cpu', gpu_name .. '_cpu.t7'}} do
  local ck = torch.load(which[2])
  local p = ck.protos
  p.lm:createClones()
  p.cnn:evaluate()
  p.lm:evaluate()
  local imgs = net_utils.prepro(scaled:clone(), false, false)
  local feats = p.cnn:forward(imgs)
  local res = {feats = feats:clone()}
  for _, mode in ipairs{{'greedy', 1}, {'beam2', 2}} do
    local seq, logps = p.lm:sample(feats, {sample_max = 1, beam_size = mode[2], temperature = 1.0})
    local sents = net_utils.decode_sequence(ck.vocab, seq)
    res[mode[1] .. '_seq'] = seq
    res[mode[1] .. '_logprobs'] = logps
    res[mode[1] .. '_captions'] = sents
    for k = 1, n do table.insert(text, string.format('%s\t%s\t%s\t%s', which[1], mode[1], files[k], sents[k])) end
  end
  outputs[which[1]] = res
end
torch.save(paths.concat(out_dir, 'lua_outputs.t7'), outputs)
local f = io.open(paths.concat(out_dir, 'captions.txt'), 'w')
f:write('checkpoint\tdecoding\tfile\tcaption\n' .. table.concat(text, '\n') .. '\n')
f:close()
print(table.concat(text, '\n'))
