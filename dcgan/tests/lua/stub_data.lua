-- Stands in for dcgan.torch's data/data.lua (which needs the `threads` package and a real dataset) when
-- make_fixture.sh runs the original main.lua: same interface (data.new(n, dataset, opt), :size(),
-- :getBatch()), batches of smooth random stripes in [-1, 1] drawn from torch's RNG (so main.lua's seed
-- fixes them). Written for this repo; not part of dcgan.torch.
local data = {}

function data.new(n, dataset_name, opt)
   local self = {opt = opt}
   for k, v in pairs(data) do self[k] = v end
   return self
end

function data:size()
   return 64
end

function data:getBatch()
   local b, s = self.opt.batchSize, self.opt.fineSize
   local out = torch.FloatTensor(b, 3, s, s)
   local xs = torch.linspace(0, 2 * math.pi, s):float()
   for i = 1, b do
      for c = 1, 3 do
         local f, p = torch.uniform(0.5, 3), torch.uniform(0, 2 * math.pi)
         local row = (xs * f + p):sin()
         out[i][c]:copy(row:view(1, s):expand(s, s))
         if torch.uniform() < 0.5 then out[i][c] = out[i][c]:t():clone() end
      end
   end
   return out
end

return data
