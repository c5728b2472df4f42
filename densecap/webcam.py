"""Dense captions of your camera, live, as the original's webcam/ demo (daemon.lua + server.py): a page on
127.0.0.1 that opens the browser camera, sends its frames and draws the model's boxes and captions over the
live picture with the frame rate (common/webcam.py).

    python densecap/webcam.py -checkpoint checkpoint.pt -gpu -1        # then open http://127.0.0.1:8000
    python densecap/webcam.py -checkpoint densecap-pretrained-vgg16.t7 -port 8080
    python densecap/webcam.py -checkpoint X -host 0.0.0.0              # other machines too (warns)

Defaults are single_machine_demo.lua's (480 px, 50 proposals, 10 boxes shown). Each frame goes through the
model as run_model.py runs an image file (densecap/frames.py), so the page's boxes and captions of a picture
are run_model.py's for the same picture saved as a file. The server answers the newest frame only and drops
stale ones; nothing is written to disk.
"""
from common import webcam
from common.cli import UserError, flag, options, parse, run
from common.device import get_device


@options
class WebcamOptions:
    """Serve a page that dense-captions the browser camera live with a DenseCap model (.pt or the original .t7)."""
    checkpoint: str = flag("", "a train.py checkpoint (.pt) or the original model (.t7)")
    port: int = flag(8000, "port of the page on -host", min=0, max=65535)
    host: str = flag("127.0.0.1", "address to listen on; anything but 127.0.0.1 lets other machines use the "
                                  "model (a warning is printed)")
    image_size: int = flag(480, "resize the longest side of each frame to this many pixels for the model "
                                "(single_machine_demo.lua's -model_image_size)", min=32)
    num_proposals: int = flag(50, "RPN proposals (after NMS) per frame (single_machine_demo.lua's "
                                  "-proposals_per_image)", min=1)
    boxes_to_show: int = flag(10, "how many of the top boxes to draw", min=1)
    rpn_nms_thresh: float = flag(0.7, "NMS threshold on the RPN proposals", min=0.0, max=1.0)
    final_nms_thresh: float = flag(0.3, "NMS threshold on the final boxes", min=0.0, max=1.0)
    max_side: int = flag(640, "new: frames larger than this (longest side) are scaled down on arrival", min=32)
    gpu: int = flag(0, "GPU to use; -1 = CPU")
    use_cudnn: int = flag(1, "accepted for compatibility (PyTorch picks cuDNN itself)")
    threads: int = flag(0, "new: CPU threads for torch (0 = torch's default)", min=0)
    precision: str = flag("auto", "the network's arithmetic: fp32, bf16 (autocast), or auto = bf16 only where the "
                                  "CPU runs it natively (AVX512-BF16/AMX) or on a GPU, else fp32",
                          choices=["auto", "fp32", "bf16"])


class LiveDenseCap:
    """A model loaded once; `__call__(rgb)` -> the page's answer: the top boxes (frame pixels) and captions."""

    def __init__(self, model, idx_to_token, opt: WebcamOptions, device="cpu"):
        self.model, self.idx_to_token, self.opt, self.device = model, idx_to_token, opt, device

    def describe(self, rgb):
        from densecap.frames import describe
        o = self.opt
        return describe(self.model, rgb, self.idx_to_token, o.image_size, o.rpn_nms_thresh, o.final_nms_thresh,
                        o.num_proposals, self.device)

    def __call__(self, rgb):
        r = self.describe(rgb)
        k = self.opt.boxes_to_show
        return {"boxes": r["boxes"][:k], "captions": r["captions"][:k]}


def load_live_model(opt: WebcamOptions, device, err=None):
    """The checkpoint loaded once, ready for frames at -precision: -> (model, idx_to_token, precision)."""
    import sys

    from common.device import native_bf16, resolve_precision
    from densecap.checkpoints import load_model
    precision = resolve_precision(opt.precision, device)
    if precision == "bf16" and device.type == "cpu" and not native_bf16():
        print("note: this CPU has no native bf16: -precision bf16 is emulated, far slower than fp32; "
              "-precision auto picks fp32 here", file=err or sys.stderr)
    model, idx_to_token, _ = load_model(opt.checkpoint, device)
    return channels_last(model.to_inference(precision)), idx_to_token, precision


def channels_last(model):
    """The trunk's weights channels-last (to_inference does it for bf16/fp16; at fp32 too it is ~15% faster on
    an AVX2 CPU, bench/live_bench.py), with describe's channels-last frames."""
    import torch
    for part in (model.conv_net1, model.conv_net2):
        part.to(memory_format=torch.channels_last)
    return model


def main(opt: WebcamOptions):
    if not opt.checkpoint:
        raise UserError("give -checkpoint (a .pt from train.py or the original densecap-pretrained-vgg16.t7)")
    import torch

    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    device = get_device(opt.gpu, "-gpu -1")
    from densecap.run_model import keep_freed_memory
    keep_freed_memory()
    model, idx_to_token, _ = load_live_model(opt, device)
    webcam.serve(LiveDenseCap(model, idx_to_token, opt, device), "densecap", opt.host, opt.port,
                 max_side=opt.max_side, send_side=min(opt.image_size, opt.max_side))


if __name__ == "__main__":
    run(main, parse(WebcamOptions))
