-- Loaded before densecap's code by make_fixture.lua and by the run_model.lua run it starts
-- (luajit -e "dofile('stubs.lua')" run_model.lua ...). It changes no densecap file; it supplies what a
-- CPU-only Torch7 without luarocks extras lacks:
--   * package.path: the densecap clone (DENSECAP_DIR) and torch-rnn's modules from its clone (TORCH_RNN_DIR),
--     which densecap's LanguageModel.lua loads with require 'torch-rnn';
--   * cjson: densecap/utils.lua requires it at load time; only run_model.lua's write_json uses it, so a small
--     JSON encoder stands in (no decode);
--   * loadcaffe: net_utils.lua requires it at load time; make_fixture.lua puts its hand-built VGG-16-shaped
--     net behind loadcaffe.load. cudnn/cunn/cutorch are never required: -backend nn and -gpu -1.
local DENSECAP = assert(os.getenv('DENSECAP_DIR'), 'set DENSECAP_DIR to a densecap clone')
local TORCH_RNN = assert(os.getenv('TORCH_RNN_DIR'), 'set TORCH_RNN_DIR to a torch-rnn clone')
package.path = DENSECAP .. '/?.lua;' .. DENSECAP .. '/?/init.lua;' .. package.path

for _, m in ipairs{'LSTM', 'VanillaRNN', 'TemporalCrossEntropyCriterion'} do
  package.preload['torch-rnn.' .. m] = function() return dofile(TORCH_RNN .. '/' .. m .. '.lua') end
end
package.preload['torch-rnn'] = function()
  require 'torch-rnn.LSTM'; require 'torch-rnn.VanillaRNN'; require 'torch-rnn.TemporalCrossEntropyCriterion'
end

local function encode(v)
  local t = type(v)
  if t == 'number' then
    if v == math.floor(v) and math.abs(v) < 2^53 then return string.format('%d', v) end
    return string.format('%.9g', v)
  elseif t == 'boolean' then return tostring(v)
  elseif t == 'string' then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format('\\u%04x', c:byte()) end) .. '"'
  elseif t == 'table' then
    local n, count = #v, 0
    for _ in pairs(v) do count = count + 1 end
    local parts = {}
    if count == n then
      for i = 1, n do parts[i] = encode(v[i]) end
      return '[' .. table.concat(parts, ',') .. ']'
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local val = v[k]
      if val == nil then val = v[tonumber(k)] end
      parts[#parts + 1] = encode(k) .. ':' .. encode(val)
    end
    return '{' .. table.concat(parts, ',') .. '}'
  elseif t == 'nil' then return 'null'
  end
  error('cannot encode a ' .. t)
end
package.preload['cjson'] = function()
  return {encode = encode, encode_sparse_array = function() end, encode_number_precision = function() end,
          decode = function() error('the cjson stand-in only encodes') end}
end
package.preload['loadcaffe'] = function()
  loadcaffe = {load = function(proto, model, backend)
    assert(backend == 'nn', 'the fixture model is built with -backend nn')
    return assert(LOADCAFFE_NET, 'make_fixture.lua sets LOADCAFFE_NET')()
  end}
  return loadcaffe
end
