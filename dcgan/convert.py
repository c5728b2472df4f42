"""Original dcgan.torch generators (.t7) -> a .pt; `python convert.py celebA_25_net_G.t7 [out.pt]`.

The reading is dcgan/lua_checkpoint.py (both published layouts; see its docstring).
"""
import os

from common.cli import UserError
from dcgan.checkpoints import save_generator
from dcgan.lua_checkpoint import load_t7
from dcgan.options import ConvertOptions, cli


def main(opt: ConvertOptions):
    if not opt.input:
        raise UserError("usage: python convert.py <generator.t7> [output.pt]")
    G, cfg = load_t7(opt.input)
    out = opt.output or os.path.splitext(opt.input)[0] + ".pt"
    save_generator(G, cfg, out, source=os.path.basename(opt.input))
    print(f"{opt.input} -> {out}: {cfg.fineSize}px generator, nz {cfg.nz}, ngf {cfg.ngf}, "
          f"{'biased' if cfg.bias else 'bias-free'} convolutions")
    return out


if __name__ == "__main__":
    cli(main, ConvertOptions)
