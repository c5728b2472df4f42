"""The original densecap model (.t7, a DenseCapModel Lua object) -> a torch-classics .pt checkpoint.

    python convert.py densecap-pretrained-vgg16.t7 densecap-pretrained-vgg16.pt
    python run_model.py -checkpoint densecap-pretrained-vgg16.t7 ...     # or use the .t7 directly

The reading and the mapping of every layer live in lua_checkpoint.py.
"""
import sys

from common.cli import UserError, flag, options, parse, run


@options
class ConvertOptions:
    """Convert the original densecap .t7 model into a torch-classics .pt checkpoint."""
    input: str = flag(None, "the .t7 model (e.g. densecap-pretrained-vgg16.t7)", positional=True)
    output: str = flag(None, "the .pt checkpoint to write", positional=True)


def main(opt: ConvertOptions):
    if not opt.input or not opt.output:
        raise UserError("usage: python convert.py MODEL.t7 OUTPUT.pt")
    from densecap.checkpoints import save_model  # here: `convert.py -h` need not import torch
    from densecap.lua_checkpoint import load_t7_model
    model, idx_to_token, extra = load_t7_model(opt.input)
    save_model(opt.output, model, idx_to_token, lua_opt=extra["opt"])
    print(f"wrote {opt.output} ({model.cfg.cnn}, vocabulary {model.cfg.vocab_size})", file=sys.stderr)


if __name__ == "__main__":
    run(main, parse(ConvertOptions))
