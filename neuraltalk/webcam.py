"""Live captions of your camera, as neuraltalk2's videocaptioning.lua: a page on 127.0.0.1 that opens the
browser camera and shows the model's caption of each frame with the frame rate (common/webcam.py).

    python neuraltalk/webcam.py -model cv/model_idshapes-best.pt -gpuid -1     # then open http://127.0.0.1:8000
    python neuraltalk/webcam.py -model model_id1-501-1448236541.t7 -port 8080  # an original checkpoint
    python neuraltalk/webcam.py -model X -host 0.0.0.0                           # other machines too (warns)

Each frame is prepared (neuraltalk/frames.py) as eval.py prepares a file of -image_folder (squashed to the
CNN's image size, centre crop; neuraltalk2 checkpoints: image.scale and its crop), so the page's caption of a
picture is eval.py's caption of the same picture saved as a file. Nothing is written to disk.
"""
from common.cli import UserError, flag, options, parse, run

# torch and the model code are imported where they are used: `webcam.py -h` answers at once


@options
class WebcamOptions:
    """Caption the browser camera's frames live with a trained neuraltalk model (.pt, or neuraltalk2's .t7)."""
    model: str = flag("", "path to the model checkpoint (.pt from train.py, or neuraltalk2's .t7)")
    port: int = flag(8000, "port of the page on -host", min=0, max=65535)
    host: str = flag("127.0.0.1", "address to listen on; anything but 127.0.0.1 lets other machines use the "
                                  "model (a warning is printed)")
    beam_size: int = flag(2, "number of beams in beam search (1 = greedy)", min=1)
    suppress_UNK: int = flag(1, "never produce UNK? (1=yes,0=no)")
    max_side: int = flag(640, "frames larger than this (longest side) are scaled down before captioning", min=16)
    seed: int = flag(123, "random number generator seed to use")
    gpuid: int = flag(0, "which gpu to use. -1 = use CPU")
    precision: str = flag("auto", "the CNN's arithmetic: fp32, bf16 (autocast), or auto = bf16 only where the CPU "
                                  "runs it natively (AVX512-BF16/AMX) or on a GPU, else fp32 (and fp32 for a "
                                  "random-weight CNN, as eval.py)", choices=["auto", "fp32", "bf16"])


def main(opt: WebcamOptions):
    if not opt.model:
        raise UserError("give -model (a .pt checkpoint from train.py or a neuraltalk2 .t7)")
    from common import webcam
    from common.device import get_device, seed_everything
    from neuraltalk.captioner import load_checkpoint
    from neuraltalk.frames import FrameCaptioner, live_precision
    seed_everything(opt.seed)
    device = get_device(opt.gpuid)
    ck = load_checkpoint(opt.model)
    captioner = FrameCaptioner(ck, device, opt.beam_size, bool(opt.suppress_UNK),
                               precision=live_precision(opt.precision, ck, device))
    webcam.serve(captioner, "neuraltalk", opt.host, opt.port, max_side=opt.max_side)


if __name__ == "__main__":
    run(main, parse(WebcamOptions))
