"""Region codes for a list of images, as extract_features.lua: fc7 features of the top boxes, in HDF5.

    python densecap/extract_features.py -input_txt images.txt -output_h5 feats.h5 -gpu -1
    # feats.h5: /feats N x M x 4096 (fc7 of the recognition network), /boxes N x M x 4 (xywh, pixels of the
    # ORIGINAL image), /num_boxes N (rows past it are zero), /valid N (0 = image skipped), /paths N

Beyond the original: rows are written to disk one image at a time (the Lua kept all N x M x 4096 floats
in memory, ~20 GB for 13k images), bad images are skipped with a warning and counted, and an interrupted
run resumes: the work goes to OUTPUT.partial (flushed after every image) and is renamed to -output_h5
only when every image is done; running the same command again continues where it stopped.
"""
import dataclasses
import hashlib
import os
import sys
import time

from common.cli import UserError, flag, options, parse, run

# torch, h5py and the model code are imported where they are used: `extract_features.py -h` answers at once


@options
class ExtractOptions:
    """Extract fc7 region codes and boxes of the top boxes of each image into an HDF5 file."""
    checkpoint: str = flag("data/models/densecap/densecap-pretrained-vgg16.t7",
                           "a train.py checkpoint (.pt) or the original model (.t7)")
    image_size: int = flag(720, "resize the longest side of each image to this many pixels", min=32)
    rpn_nms_thresh: float = flag(0.7, "NMS threshold on the RPN proposals", min=0.0, max=1.0)
    final_nms_thresh: float = flag(0.4, "NMS threshold on the final boxes", min=0.0, max=1.0)
    num_proposals: int = flag(1000, "how many RPN proposals (after NMS) go to the recognition network", min=1)
    boxes_per_image: int = flag(100, "M: rows per image in /feats and /boxes (fewer boxes: zero rows)", min=1)
    input_txt: str = flag("", "a text file with one image path a line (relative paths: to the current folder)")
    max_images: int = flag(0, "use only the first this many lines of -input_txt (0 = all)", min=0)
    output_h5: str = flag("", "the HDF5 file to write (/feats, /boxes, /num_boxes, /valid, /paths)")
    gpu: int = flag(0, "GPU to use; -1 = CPU")
    precision: str = flag("auto", "the network's arithmetic: fp32, bf16 (autocast; the codes are then bf16 values "
                                  "stored as float32), or auto = bf16 only where the CPU runs it natively "
                                  "(AVX512-BF16/AMX) or on a GPU, else fp32", choices=["auto", "fp32", "bf16"])
    use_cudnn: int = flag(1, "accepted for compatibility (PyTorch picks cuDNN itself)")


def region_codes(model, image, rpn_nms_thresh=0.7, final_nms_thresh=0.4, num_proposals=1000):
    """The model's test path, keeping the recognition codes (DenseCapModel:extractFeatures).

    image (1, 3, H, W) model input -> (final boxes (K, 4) xcycwh, scores (K,), fc7 codes (K, D), the proposal
    boxes (K, 4) the codes were pooled from), sorted by score after the final NMS; as forward_test, at the
    model's precision (to_inference: the trunk and fc6/fc7 in bf16/fp16 autocast, the rest float32)."""
    import torch
    from torchvision.ops import nms

    from common.device import autocast
    from densecap import box_utils
    H, W = image.shape[-2:]
    if min(H, W) < 32:  # as forward_test: smaller than the trunk's stride, pad with the mean colour
        image = torch.nn.functional.pad(image, (0, max(0, 32 - W), 0, max(0, 32 - H)))
    precision = getattr(model, "precision", "fp32")
    if precision != "fp32":
        image = image.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        with autocast(image.device, precision):
            feats = model.extract_features(image)
        feats = feats.float().contiguous()
        roi_feats, proposals, _ = model.localization.forward_test(feats, (H, W), rpn_nms_thresh, num_proposals)
        with autocast(image.device, precision):
            codes = model.recog_base(roi_feats.flatten(1))
        codes = codes.float()
        scores = model.objectness(codes).squeeze(1)
        final, _ = box_utils.clip_boxes(box_utils.apply_box_transform(proposals, model.box_reg(codes)), H, W)
        if final_nms_thresh > 0:
            keep = nms(box_utils.xcycwh_to_x1y1x2y2(final), scores, final_nms_thresh)
        else:
            keep = scores.argsort(descending=True)
    return final[keep], scores[keep], codes[keep], proposals[keep]


def read_list(opt):
    if not opt.input_txt:
        raise UserError("give -input_txt (a text file, one image path a line)")
    if not opt.output_h5:
        raise UserError("give -output_h5 (the HDF5 file to write)")
    if not os.path.isfile(opt.input_txt):
        raise UserError(f"{opt.input_txt}: no such file (-input_txt)")
    try:
        with open(opt.input_txt, encoding="utf-8") as f:
            paths = [line.strip() for line in f if line.strip()]
    except UnicodeDecodeError:
        raise UserError(f"{opt.input_txt}: not a text file of image paths (-input_txt)") from None
    if opt.max_images > 0:
        paths = paths[:opt.max_images]
    if not paths:
        raise UserError(f"{opt.input_txt}: no image paths in it (-input_txt)")
    return paths


def signature(paths, opt, dim):
    """What a partial file must match to be resumed: the image list and every setting that changes a row."""
    keys = ("checkpoint", "image_size", "rpn_nms_thresh", "final_nms_thresh", "num_proposals", "boxes_per_image",
            "precision")
    text = "\n".join(paths) + "\n" + repr([getattr(opt, k) for k in keys]) + f"\n{dim}"
    return hashlib.sha256(text.encode()).hexdigest()


def open_output(partial, paths, M, D, sig, err):
    """The .partial file to fill (a new one, or the previous run's when it was the same job) and its done mask."""
    import h5py
    import numpy as np
    if os.path.exists(partial):
        try:
            f = h5py.File(partial, "r+")
            if f.attrs.get("signature") == sig:
                print(f"resuming {partial}: {int(f['done'][:].sum())} of {len(paths)} image(s) already done",
                      file=err)
                return f
            f.close()
        except OSError:
            pass
        print(f"warning: {partial} is from another run (or damaged); starting it again", file=err)
        os.unlink(partial)
    f = h5py.File(partial, "w")
    N = len(paths)
    f.create_dataset("feats", (N, M, D), "f4", chunks=(1, M, D), fillvalue=0)
    f.create_dataset("boxes", (N, M, 4), "f4", chunks=(1, M, 4), fillvalue=0)
    f.create_dataset("num_boxes", (N,), "i4", fillvalue=0)
    f.create_dataset("valid", (N,), "u1", fillvalue=0)
    f.create_dataset("done", (N,), "u1", fillvalue=0)
    f.create_dataset("paths", data=np.array(paths, dtype=h5py.string_dtype()))
    f.attrs["signature"] = sig
    return f


def extract_one(model, path, opt, device):
    """-> (boxes xywh (K, 4) in the original image's pixels, codes (K, D)), K <= -boxes_per_image."""
    import torch
    from PIL import Image

    from densecap import box_utils
    from densecap.loader import load_image
    img, x = load_image(path, opt.image_size)
    with Image.open(path) as im:
        w0, h0 = im.size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF: shown turned 90 degrees; load_image turns it too
            w0, h0 = h0, w0
    boxes, _, codes, _ = region_codes(model, x.to(device), opt.rpn_nms_thresh, opt.final_nms_thresh,
                                      opt.num_proposals)
    xywh = box_utils.xcycwh_to_xywh(boxes[:opt.boxes_per_image].float().cpu())
    xywh = xywh * torch.tensor([w0 / img.size[0], h0 / img.size[1]] * 2)
    return xywh.numpy(), codes[:opt.boxes_per_image].float().cpu().numpy()


def main(opt: ExtractOptions, err=None):
    from common.device import get_device, native_bf16, resolve_precision
    from densecap.checkpoints import load_model
    from densecap.run_model import keep_freed_memory
    err = err or sys.stderr
    paths = read_list(opt)
    out_dir = os.path.dirname(os.path.abspath(opt.output_h5))
    if not os.path.isdir(out_dir):
        raise UserError(f"{opt.output_h5}: folder {out_dir} does not exist (-output_h5)")
    if os.path.exists(opt.output_h5):
        raise UserError(f"{opt.output_h5}: already exists; delete it or choose another -output_h5")
    device = get_device(opt.gpu, "-gpu -1")
    precision = resolve_precision(opt.precision, device)
    if precision == "bf16" and device.type == "cpu" and not native_bf16():
        print("note: this CPU has no native bf16: -precision bf16 is emulated, far slower than fp32; "
              "-precision auto picks fp32 here", file=err)
    keep_freed_memory()
    model, _, _ = load_model(opt.checkpoint, device, mmap=True)
    model.to_inference(precision)
    M, D = opt.boxes_per_image, model.cfg.fc_dim
    partial = opt.output_h5 + ".partial"
    opt = dataclasses.replace(opt, precision=precision)  # what ran, in the resume signature (not "auto")
    f = open_output(partial, paths, M, D, signature(paths, opt, D), err)
    skipped, t0, n_run = 0, time.process_time(), 0
    try:
        done = f["done"][:]
        for i, path in enumerate(paths):
            if done[i]:
                continue
            print(f"Processing image {i + 1} / {len(paths)}", file=err)
            try:
                boxes, codes = extract_one(model, path, opt, device)
                k = len(boxes)
                f["feats"][i, :k], f["boxes"][i, :k] = codes, boxes
                f["num_boxes"][i], f["valid"][i] = k, 1
            except UserError as e:
                print(f"warning: skipping {path}: {str(e).removeprefix(path + ': ')}", file=err)
                skipped += 1
            f["done"][i] = 1
            f.flush()  # a crash or Ctrl-C keeps every finished image
            n_run += 1
        n_skipped = int(len(paths) - f["valid"][:].sum())
    finally:
        f.close()
    os.replace(partial, opt.output_h5)
    print(f"wrote {opt.output_h5}: {len(paths) - n_skipped} image(s) x {M} boxes x {D}"
          + (f"; skipped {n_skipped} unreadable image(s)" if n_skipped else "")
          + f"; {(time.process_time() - t0) / max(n_run, 1):.2f} CPU s per image ({precision})", file=err)
    return opt.output_h5


if __name__ == "__main__":
    run(main, parse(ExtractOptions))
