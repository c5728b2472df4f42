"""Caption images with a trained model, as neuraltalk2's eval.lua: a split of the dataset (with metrics)
or any folder of your own images; writes vis/vis.json and vis/imgs/ for the vis/index.html page.

    python neuraltalk/eval.py -model cv/model_id1-best.pt -image_folder my_photos -num_images 10 -gpuid -1
    python neuraltalk/eval.py -model cv/model_id1-best.pt -split test -num_images -1 -language_eval 1
    python neuraltalk/eval.py -model model_id1-501-1448236541.t7 -image_folder my_photos   # original checkpoint
    python neuraltalk/eval.py -model cv/model_id1-best.pt -input_video in.mp4 -output_video out.mp4  # + in.jsonl
    cd neuraltalk/vis && python -m http.server     # then open http://localhost:8000
"""
import os
import shlex
import shutil
import sys
import time

from common.cli import UserError, flag, options, parse, run

# torch and the model code are imported in main(): `eval.py -h` and a bad flag answer at once

VIS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vis")


@options
class EvalOptions:
    """Caption images with a trained neuraltalk model (.pt, or an original neuraltalk2 .t7)."""
    model: str = flag("", "path to the model checkpoint to evaluate (.pt from train.py, or neuraltalk2's .t7)")
    batch_size: int = flag(1, "if > 0 then overrule, otherwise load from checkpoint", min=0)
    num_images: int = flag(100, "how many images to use when periodically evaluating the loss? (-1 = all)", min=-1)
    language_eval: int = flag(0, "evaluate BLEU/METEOR/ROUGE-L/CIDEr against the references? (needs Java; 1 = yes)")
    dump_images: int = flag(1, "dump images into vis/imgs folder for vis? (1=yes,0=no)")
    dump_json: int = flag(1, "dump json with predictions into vis folder? (1=yes,0=no)")
    dump_path: int = flag(0, "write image paths along with predictions into vis json? (1=yes,0=no)")
    sample_max: int = flag(1, "1 = sample argmax words. 0 = sample from distributions.")
    beam_size: int = flag(2, "used when sample_max = 1, indicates number of beams in beam search", min=1)
    temperature: float = flag(1.0, "temperature when sampling from distributions (i.e. when sample_max = 0)")
    suppress_UNK: int = flag(1, "new (ImageCaptioning.pytorch): never produce UNK (its log-probability is set to "
                                "-inf when decoding)? (1=yes,0=no)")
    image_folder: str = flag("", "if this is nonempty then will predict on the images in this folder path")
    image_root: str = flag("", "root folder of the dataset's images (default: the one prepro.py recorded)")
    input_h5: str = flag("", "path to the h5file containing the preprocessed dataset. empty = fetch from model")
    input_json: str = flag("", "path to the json file containing additional info and vocab. empty = fetch from model")
    split: str = flag("test", "if running on the dataset, which split to use: val|test|train")
    vis_dir: str = flag(VIS_DIR, "new: folder for vis.json, imgs/ and index.html")
    id: str = flag("evalscript", "an id identifying this run/job")
    seed: int = flag(123, "random number generator seed to use")
    gpuid: int = flag(0, "which gpu to use. -1 = use CPU")
    input_video: str = flag("", "new: caption every frame of this video (instead of images): one JSON line per "
                                "frame in -output_json, the captions drawn in -output_video")
    output_json: str = flag("", "new: with -input_video, the per-frame captions (JSON lines; '' = the video's "
                                "name with .jsonl, in the current folder)")
    output_video: str = flag("", "new: with -input_video, write the video with each frame's caption drawn "
                                 "(audio kept)")
    max_frames: int = flag(-1, "new: with -input_video, stop after this many frames (-1 = all)", min=-1)
    precision: str = flag("auto", "the network's arithmetic: fp32, bf16 (autocast), or auto = bf16 only where the "
                                  "CPU runs it natively (AVX512-BF16/AMX) or on a GPU, else fp32",
                          choices=["auto", "fp32", "bf16"])


def main(opt: EvalOptions):
    from common.device import get_device, seed_everything
    from neuraltalk import engine
    from neuraltalk.captioner import build_captioner, caption_folder, load_checkpoint
    from neuraltalk.data import CaptionData
    from neuraltalk.frames import live_precision
    if not opt.model:
        raise UserError("give -model (a .pt checkpoint from train.py or a neuraltalk2 .t7)")
    if not opt.temperature > 0:
        raise UserError(f"-temperature {opt.temperature:g}: must be > 0 (1 samples from the model's distribution, "
                        f"lower is more conservative)")
    seed_everything(opt.seed)
    device = get_device(opt.gpuid)
    ck = load_checkpoint(opt.model)
    # auto: bf16 where the CPU runs it natively, but float32 for a random-weight CNN (bf16 changes its captions)
    precision = live_precision(opt.precision, ck, device)
    if opt.input_video:
        return caption_video_file(opt, ck, device, precision)
    model = build_captioner(ck, device).to_inference(precision)  # the CNN only: the decoder stays float32
    sample_kw = dict(beam_size=opt.beam_size if opt.sample_max else 1, sample_max=bool(opt.sample_max),
                     temperature=opt.temperature, banned=engine.unk_columns(ck["ix_to_word"], opt.suppress_UNK))
    trained = ck.get("opt", {})  # the training options, read (never copied into `opt`)
    batch_size = opt.batch_size if opt.batch_size > 0 else trained.get("batch_size", 16)
    if opt.image_folder:
        preds = caption_folder(model, ck["ix_to_word"], opt.image_folder, ck["cnn_info"], device, opt.num_images,
                               batch_size, **sample_kw)
        if not preds:
            raise UserError(f"{opt.image_folder}: none of the images could be decoded")
        if opt.language_eval:
            print("note: -language_eval 1 needs reference captions, and images from -image_folder have none; "
                  "nothing scored (use -split with the dataset to get metrics)")
        stats = {}
    else:
        json_path, h5_path = opt.input_json or trained.get("input_json", ""), opt.input_h5 or trained.get("input_h5", "")
        if not json_path or not h5_path:
            raise UserError(f"{opt.model} does not say which dataset it was trained on; give -input_json and -input_h5 "
                            f"(or -image_folder)")
        data = CaptionData(json_path, h5_path)
        if data.ix_to_word != ck["ix_to_word"]:
            raise UserError(f"{opt.model} was trained with a different vocabulary than {json_path}")
        _, preds, stats = engine.evaluate(model, data, opt.split, device, opt.num_images, batch_size,
                                          crop_size=int(ck["cnn_info"].get("crop_size", 224)),
                                          language_eval=bool(opt.language_eval), verbose=True, **sample_kw)
        root = opt.image_root or data.images_root
        for p in preds:
            p["path"] = os.path.join(root, data.images[p["ix"]]["file_path"])
            p["file_name"] = data.images[p["ix"]]["file_path"]
    for p in preds:
        print(f"image {p['image_id']}: {p['caption']}")
    if stats:
        print("language evaluation: " + ", ".join(f"{k} {v:.3f}" for k, v in stats.items()))
    if opt.dump_json or opt.dump_images:
        write_vis(preds, opt)
    return preds, stats


def caption_video_file(opt, ck, device, precision):
    """-input_video: every frame captioned as a file of -image_folder would be (neuraltalk/frames.py), streamed."""
    from neuraltalk.frames import FrameCaptioner, caption_video
    out_json = opt.output_json or os.path.splitext(os.path.basename(opt.input_video))[0] + ".jsonl"
    captioner = FrameCaptioner(ck, device, opt.beam_size, bool(opt.suppress_UNK),
                               bool(opt.sample_max), opt.temperature, precision=precision)
    t0 = time.process_time()
    n = caption_video(captioner, opt.input_video, out_json, opt.output_video, opt.max_frames)
    print(f"{n} frame(s) captioned -> {out_json}" + (f" and {opt.output_video}" if opt.output_video else "")
          + f"; {(time.process_time() - t0) / max(n, 1):.3f} CPU s per frame", file=sys.stderr)
    return n


def write_vis(preds, opt):
    """vis.json ([{image_id, caption, file_name}]) and imgs/img<k>.jpg (k from 1), with index.html alongside.
    A JPEG is copied as it is (eval.lua's `cp`), anything else decoded and saved as JPEG."""
    import numpy as np
    from PIL import Image

    from common import h5prep
    from neuraltalk.data import load_rgb
    os.makedirs(os.path.join(opt.vis_dir, "imgs"), exist_ok=True)
    page = os.path.join(VIS_DIR, "index.html")
    if os.path.abspath(opt.vis_dir) != VIS_DIR:
        shutil.copy(page, os.path.join(opt.vis_dir, "index.html"))
    if opt.dump_images:
        for k, p in enumerate(preds, 1):
            out = os.path.join(opt.vis_dir, "imgs", f"img{k}.jpg")
            if is_jpeg(p["path"]):
                shutil.copyfile(p["path"], out)
                continue
            img = load_rgb(p["path"]) if os.path.isfile(p["path"]) else None  # a split's image may be elsewhere
            if img is None:
                img = np.zeros((8, 8, 3), np.uint8)
            Image.fromarray(img).save(out, quality=90)
    if opt.dump_json:
        keep = ("image_id", "caption", "file_name") + (("path",) if opt.dump_path else ())
        h5prep.write_json(os.path.join(opt.vis_dir, "vis.json"), [{k: p[k] for k in keep} for p in preds])
    print(f"wrote {len(preds)} captions to {opt.vis_dir}; view them with: cd {shlex.quote(opt.vis_dir)} && "
          f"{shlex.quote(os.path.basename(sys.executable))} -m http.server", file=sys.stderr)


def is_jpeg(path):
    """A readable file that starts as a JPEG does (FF D8 FF), whatever its name."""
    try:
        with open(path, "rb") as f:
            return f.read(3) == b"\xff\xd8\xff"
    except OSError:
        return False


if __name__ == "__main__":
    run(main, parse(EvalOptions))
