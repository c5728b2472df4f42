"""Run a trained DenseCap model on images, as run_model.lua: results.json + resized images for the viewer.

    python run_model.py -checkpoint checkpoint.pt -input_image imgs/elephant.jpg -gpu -1
    python run_model.py -checkpoint densecap-pretrained-vgg16.t7 -input_dir photos/ -output_dir drawn/
    python run_model.py -checkpoint checkpoint.pt -input_video in.mp4 -output_video out.mp4  # + in.jsonl
    cd vis && python -m http.server 8181      # then open http://localhost:8181/view_results.html
"""
import json
import os
import shutil
import sys
import tempfile
import time

from common.cli import UserError, flag, options, parse, run

# torch, PIL and the model code are imported where they are used, so that `run_model.py -h` and a bad flag
# answer at once (start-up: importing torch costs seconds of CPU)

VIEWER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vis", "view_results.html")
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39"]


@options
class RunOptions:
    """Run a DenseCap model on images; write results.json and the images for vis/view_results.html."""
    checkpoint: str = flag("data/models/densecap/densecap-pretrained-vgg16.t7",
                           "a train.py checkpoint (.pt) or the original model (.t7)")
    image_size: int = flag(720, "resize the longest side of each image to this many pixels", min=1)
    rpn_nms_thresh: float = flag(0.7, "NMS threshold on the RPN proposals")
    final_nms_thresh: float = flag(0.3, "NMS threshold on the final boxes")
    num_proposals: int = flag(1000, "how many RPN proposals (after NMS) go to the recognition network", min=1)
    input_image: str = flag("", "a single image to run")
    input_dir: str = flag("", "a folder of images (files starting with '.' are ignored; non-images are "
                              "skipped with a warning)")
    input_split: str = flag("", "train, val or test: run the images of this split of -splits_json")
    splits_json: str = flag("info/densecap_splits.json", "the split file used with -input_split")
    vg_img_root_dir: str = flag("", "folder of Visual Genome images <id>.jpg, for -input_split")
    max_images: int = flag(100, "stop after this many images (-1 = all)")
    output_dir: str = flag("", "if set, draw the top boxes and captions onto copies of the images here")
    num_to_draw: int = flag(10, "how many boxes to draw with -output_dir")
    text_size: int = flag(2, "caption text size with -output_dir")
    box_width: int = flag(2, "box line width with -output_dir")
    output_vis: int = flag(1, "1: write results.json and the resized images to -output_vis_dir")
    output_vis_dir: str = flag("vis/data", "folder for results.json and the resized images")
    gpu: int = flag(0, "GPU to use; -1 = CPU")
    use_cudnn: int = flag(1, "accepted for compatibility (PyTorch picks cuDNN itself)")
    threads: int = flag(0, "new: CPU threads for torch (0 = torch's default)")
    input_video: str = flag("", "new: a video file to run frame by frame (instead of images): one JSON line per "
                                "frame in -output_json, the frames drawn in -output_video")
    output_json: str = flag("", "new: with -input_video, the per-frame results (JSON lines; '' = the video's name "
                                "with .jsonl, in the current folder)")
    output_video: str = flag("", "new: with -input_video, write the video with the top -num_to_draw boxes and "
                                 "captions drawn (audio kept)")
    max_frames: int = flag(-1, "new: with -input_video, stop after this many frames (-1 = all)", min=-1)
    precision: str = flag("auto", "the network's arithmetic: fp32, bf16 (autocast), or auto = bf16 only where the "
                                  "CPU runs it natively (AVX512-BF16/AMX) or on a GPU, else fp32",
                          choices=["auto", "fp32", "bf16"])


def keep_freed_memory():
    """Let freed tensors' memory be reused instead of handed back to the OS (glibc only; elsewhere a no-op).

    glibc serves every block over 32 MB (a VGG-16 activation at 720 px is 88 MB, the RoI features 100 MB)
    with its own mmap and unmaps it on free, so each image faults ~280,000 fresh zeroed pages: 0.8-1.2 CPU s
    of system time per image at 1000 proposals (AVX2 EPYC), more than anything but the trunk and fc6/fc7.
    Raising the mmap and trim thresholds keeps that memory in the heap: the peak stays about the same, but
    it is not returned between images. -> whether it was applied."""
    import ctypes
    import platform
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def image_paths(opt):
    """The first of -input_image / -input_dir / -input_split that is set, as in run_model.lua."""
    if opt.input_image:
        if not os.path.isfile(opt.input_image):
            raise UserError(f"{opt.input_image}: no such image (-input_image)")
        paths = [opt.input_image]
    elif opt.input_dir:
        if not os.path.isdir(opt.input_dir):
            raise UserError(f"{opt.input_dir}: no such folder (-input_dir)")
        paths = [os.path.join(opt.input_dir, f) for f in sorted(os.listdir(opt.input_dir))
                 if not f.startswith(".") and os.path.isfile(os.path.join(opt.input_dir, f))]
    elif opt.input_split:
        if not os.path.isfile(opt.splits_json):
            raise UserError(f"{opt.splits_json}: no such split file (-splits_json)")
        with open(opt.splits_json) as f:
            splits = json.load(f)
        if opt.input_split not in splits:
            raise UserError(f"-input_split {opt.input_split}: {opt.splits_json} has {sorted(splits)}")
        paths = [os.path.join(opt.vg_img_root_dir, f"{i}.jpg") for i in splits[opt.input_split]]
    else:
        raise UserError("give one of -input_image, -input_dir, -input_split or -input_video")
    return paths if opt.max_images < 0 else paths[:opt.max_images]


def draw_results(img, boxes_xywh, captions, opt):
    """A copy of `img` with the top -num_to_draw boxes and their captions."""
    from PIL import ImageDraw
    img = img.copy()
    draw = ImageDraw.Draw(img)
    for k, ((x, y, w, h), cap) in enumerate(list(zip(boxes_xywh, captions))[:opt.num_to_draw]):
        color = COLORS[k % len(COLORS)]
        draw.rectangle([x, y, x + w, y + h], outline=color, width=opt.box_width)
        draw.text((x + 3, y + 3), cap, fill=color, font_size=6 * opt.text_size + 2)
    return img


def read_ahead(pool, paths, image_size, ahead=2):
    """(path, future (resized PIL image, model input)) in order, with up to `ahead` more images being
    decoded and resized by `pool` while the network runs on this one."""
    from collections import deque

    from densecap.loader import load_image
    pending = deque()
    for path in paths:
        pending.append((path, pool.submit(load_image, path, image_size)))
        if len(pending) > ahead:
            yield pending.popleft()
    while pending:
        yield pending.popleft()


def detect(model, x, path, opt, device, idx_to_token):
    """One model input -> the result dict in the original's schema."""
    from PIL import Image

    from densecap import box_utils
    from densecap.checkpoints import captions_of
    # run_model.lua leaves the final boxes unclipped
    boxes, scores, seqs = model.forward_test(x.to(device), opt.rpn_nms_thresh, opt.final_nms_thresh,
                                             opt.num_proposals, clip_final_boxes=False)
    xywh = box_utils.xcycwh_to_xywh(boxes.float().cpu())
    name = os.path.basename(path)
    if os.path.splitext(name)[1].lower() not in Image.registered_extensions():
        name += ".png"  # -input_dir takes any file name; the saved copy needs a format
    return {"img_name": name,
            "boxes": [[round(v, 4) for v in b] for b in xywh.tolist()],
            "scores": [round(s, 6) for s in scores.float().cpu().tolist()],
            "captions": captions_of(seqs.cpu(), idx_to_token)}


def save_images(img, result, opt):
    """The resized image for the viewer and/or the drawn copy (-output_dir)."""
    if opt.output_vis:
        img.save(os.path.join(opt.output_vis_dir, result["img_name"]))
    if opt.output_dir:
        draw_results(img, result["boxes"], result["captions"], opt).save(os.path.join(opt.output_dir, result["img_name"]))


def write_results(results, opt, err):
    """results.json (atomically), only when there are results: a run that read no image leaves an
    earlier results.json as it was (run_model.lua wrote it only when #results_json > 0)."""
    if not opt.output_vis or not results:
        return None
    path = os.path.join(opt.output_vis_dir, "results.json")
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json.tmp", dir=opt.output_vis_dir)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"results": results, "opt": vars(opt)}, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    # put the viewer one level up from the data folder (vis/view_results.html reads vis/data/)
    viewer = os.path.join(os.path.dirname(os.path.abspath(opt.output_vis_dir)), "view_results.html")
    if not os.path.exists(viewer):
        shutil.copyfile(VIEWER, viewer)
    print(f"wrote {len(results)} results to {path}; viewer: {viewer}", file=err)
    return path


def run_video(opt, device, precision, err):
    """-input_video: every frame through the model (densecap/frames.py), streamed; -> number of frames."""
    from densecap.checkpoints import load_model
    from densecap.frames import run_video as run_frames
    out_json = opt.output_json or os.path.splitext(os.path.basename(opt.input_video))[0] + ".jsonl"
    model, idx_to_token, _ = load_model(opt.checkpoint, device, mmap=True)
    model.to_inference(precision)
    t0 = time.process_time()
    n = run_frames(model, idx_to_token, opt.input_video, out_json, opt.output_video, opt, device, err)
    print(f"{n} frame(s) -> {out_json}" + (f" and {opt.output_video}" if opt.output_video else "")
          + f"; {(time.process_time() - t0) / max(n, 1):.3f} CPU s per frame", file=err)
    return n


def main(opt: RunOptions, err=None):
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from tqdm import tqdm

    from common.device import get_device, native_bf16, resolve_precision
    from densecap.checkpoints import load_model

    err = err or sys.stderr
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    paths = [] if opt.input_video else image_paths(opt)
    keep_freed_memory()
    device = get_device(opt.gpu, "-gpu -1")
    precision = resolve_precision(opt.precision, device)
    if precision == "bf16" and device.type == "cpu" and not native_bf16():
        print("note: this CPU has no native bf16: -precision bf16 is emulated, far slower than fp32; "
              "-precision auto picks fp32 here", file=err)
    if opt.input_video:
        return run_video(opt, device, precision, err)
    model, idx_to_token, _ = load_model(opt.checkpoint, device, mmap=True)
    model.to_inference(precision)
    for d in (opt.output_vis_dir if opt.output_vis else "", opt.output_dir):
        if d:
            os.makedirs(d, exist_ok=True)
    results, skipped, t0 = [], 0, time.process_time()
    # two workers decode the next images and write the previous ones while the network runs
    with ThreadPoolExecutor(2) as pool:
        writes = []
        try:
            for path, image in tqdm(read_ahead(pool, paths, opt.image_size), total=len(paths), unit="img",
                                    disable=len(paths) < 2 or not err.isatty(), file=err):
                try:
                    img, x = image.result()
                except UserError as e:
                    if len(paths) == 1:
                        raise
                    print(f"warning: skipping {e}", file=err)
                    skipped += 1
                    continue
                result = detect(model, x, path, opt, device, idx_to_token)
                if not result["boxes"]:
                    print(f"warning: {path}: no boxes left after NMS", file=err)
                results.append(result)
                writes.append(pool.submit(save_images, img, result, opt))
            for w in writes:
                w.result()
        finally:  # Ctrl-C or an error keeps the results so far
            write_results(results, opt, err)
    n = len(results)
    if n == 0:
        raise UserError(f"no image could be read ({skipped} skipped); nothing written")
    print(f"{n} image(s), {skipped} skipped, {(time.process_time() - t0) / max(n, 1):.2f} CPU s per image "
          f"({precision})", file=err)
    return results


if __name__ == "__main__":
    run(main, parse(RunOptions))
