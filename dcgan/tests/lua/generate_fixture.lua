-- Runs dcgan.torch's own generate.lua (at the commit make_fixture.sh checked out) on the generator that
-- main.lua saved, then keeps what it computed: the noise it drew (global `noise`), the images it produced
-- in training-mode BatchNorm (generate.lua never calls net:evaluate(); `net.output` after its in-place
-- add(1):mul(0.5)), and a second forward of a freshly loaded copy in evaluate mode (as arithmetic.lua).
-- Usage (from make_fixture.sh): luajit -e "require 'torch'; torch.manualSeed(2)" generate_fixture.lua DCGAN_DIR OUT_DIR
local dir, out = arg[1], arg[2]
dofile(dir .. '/generate.lua')   -- reads net, batchSize, name, gpu, display from the environment
torch.save(out .. '/noise.t7', noise:float())
torch.save(out .. '/images_train.t7', net.output:float():clone())   -- (G(noise) + 1) / 2, batch statistics
local fresh = util.load(os.getenv('net'), 0)
if torch.type(fresh:get(1)) == 'nn.View' then fresh:remove(1) end
fresh:float()
fresh:evaluate()
torch.save(out .. '/output_eval.t7', fresh:forward(noise):float():clone())  -- G(noise) in [-1, 1], running statistics
print('saved noise.t7, images_train.t7, output_eval.t7 in ' .. out)
