"""Convert an original char-rnn checkpoint (.t7, CPU or GPU) to ours: `python convert.py in.t7 [out.pt]`.

The reading itself is charrnn/lua_checkpoint.py; sample.py and train.py -init_from read .t7 directly too.
"""
import sys

from common.cli import UserError, flag, options, parse, run


@options
class ConvertOptions:
    """Convert an original char-rnn .t7 checkpoint (CPU or GPU) into a torch-classics .pt checkpoint."""
    input: str = flag(None, "the .t7 checkpoint written by char-rnn's train.lua", positional=True)
    output: str = flag(None, "where to write the .pt checkpoint (default: input with .pt)", positional=True)


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
from charrnn.lua_checkpoint import load_t7
from common import checkpoint


def main(opt: ConvertOptions):
    if not opt.input:
        raise UserError("usage: python convert.py in.t7 [out.pt]")
    model, vocab, t7_opt = load_t7(opt.input)
    out = opt.output or opt.input.rsplit(".", 1)[0] + ".pt"
    keep = {k: t7_opt[k] for k in ("rnn_size", "num_layers", "model", "dropout", "seq_length", "batch_size")
            if k in t7_opt}
    checkpoint.save(out, "charrnn", {
        "model": model.float().state_dict(), "config": model.cfg.to_dict(), "opt": dict(keep, wordvec_size=0),
        "vocab": vocab, "joiner": "",
        "tokens": "char", "unit": "byte", "wordvec_size": 0, "converted_from": opt.input,
        "val_loss": t7_opt["val_loss"],
        "i": 0, "epoch": 0.0, "train_losses": [], "val_losses": {}})
    print(f"wrote {out} ({t7_opt['model']} {t7_opt['num_layers']}x{t7_opt['rnn_size']}, {len(vocab)} byte vocabulary)")
    return out


if __name__ == "__main__":
    run(main, parse(ConvertOptions, sys.argv[1:]))
