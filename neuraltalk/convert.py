"""neuraltalk2's `.t7` checkpoint (e.g. model_id1-501-1448236541.t7, GPU or `_cpu`) -> our checkpoint.

    python neuraltalk/convert.py model_id1-501-1448236541.t7 [model_id1-501.pt]
    python neuraltalk/eval.py -model model_id1-501-1448236541.t7 -image_folder imgs   # converts on the fly

The reading lives in neuraltalk/lua_checkpoint.py.
"""
import os

from common import checkpoint
from common.cli import UserError, flag, options, parse, run


@options
class ConvertOptions:
    """Convert an original neuraltalk2 .t7 checkpoint into a torch-classics .pt checkpoint."""
    t7_path: str = flag("", "neuraltalk2 checkpoint (.t7)", positional=True)
    out: str = flag("", "output .pt (default: the .t7 name with .pt)", positional=True)


def main(opt: ConvertOptions):
    if not opt.t7_path:
        raise UserError("give the neuraltalk2 .t7 checkpoint to convert")
    from neuraltalk.lua_checkpoint import KIND, convert_t7  # here: `convert.py -h` need not import torch
    ck = convert_t7(opt.t7_path)
    out = opt.out or os.path.splitext(opt.t7_path)[0] + ".pt"
    ck.pop("kind")
    checkpoint.save(out, KIND, ck)
    print(f"wrote {out}: show_tell, vocabulary {len(ck['ix_to_word'])}, rnn_size {ck['config']['rnn_size']}")
    return out


if __name__ == "__main__":
    run(main, parse(ConvertOptions))
