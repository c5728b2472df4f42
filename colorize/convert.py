"""The published colornet.t7 / colornet_imagenet.t7 -> a torch-classics .pt: `python convert.py colornet.t7 out.pt`.

The reading itself (graph walk, shape checks, BatchNorm of the running_std era) is colorize/lua_checkpoint.py.
"""
import os
import sys

if os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # run as a script: this folder's colorize.py must not hide the colorize package

from common.cli import UserError, flag, options, parse, run


@options
class ConvertOptions:
    """Convert the published colornet.t7 (or colornet_imagenet.t7) into a torch-classics .pt model."""
    input: str = flag(None, "the .t7 model (colornet.t7 as download_model.sh fetches it)", positional=True)
    output: str = flag(None, "where to write the .pt (default: input with .pt)", positional=True)


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
from colorize.lua_checkpoint import load_t7
from common import checkpoint


def main(opt: ConvertOptions):
    if not opt.input:
        raise UserError("usage: python convert.py colornet.t7 [colornet.pt]")
    net, mean = load_t7(opt.input)
    out = opt.output or opt.input.rsplit(".", 1)[0] + ".pt"
    checkpoint.save(out, "colorize", {"model": net.state_dict(), "config": vars(net.config), "mean": mean,
                                      "recombine": "yuv", "source": f"converted from {opt.input}",
                                      "licence": "CC BY-NC-SA 4.0 (Iizuka, Simo-Serra, Ishikawa)"})
    n = sum(p.numel() for p in net.parameters())
    print(f"wrote {out} ({n / 1e6:.2f}M parameters, mean {mean:.4f}, {net.config.n_classes} classes)")
    return out


if __name__ == "__main__":
    run(main, parse(ConvertOptions, sys.argv[1:]))
