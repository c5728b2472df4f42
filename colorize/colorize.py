"""Colorize a photo or a folder of photos, as colorize.lua (`th colorize.lua in.png out.png`).

    python colorize/colorize.py in.png out.png                 # the converted original model
    python colorize/colorize.py old_photos/ colour_photos/     # a whole folder, model loaded once
    python colorize/colorize.py old_film.mp4 colour_film.mp4   # a video: steady colours within a shot, audio kept
    python colorize/colorize.py in.jpg out.jpg -model cv/colornet_iter2000.pt -style_image sunset.jpg
"""
import os
import sys

if os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # run as a script: this folder's colorize.py must not hide the colorize package
from pathlib import Path

from common.cli import UserError, flag, options, parse, run

# torch, numpy and the pipeline are imported where an image is colorized, so `-h` costs no torch import
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "colornet.pt"


@options
class ColorizeOptions:
    """Colorize grayscale photos with the joint global/local network (Iizuka et al., SIGGRAPH 2016)."""
    input: str = flag(None, "an image (any size; PNG/JPEG/TIFF/BMP, gray, RGB, alpha, 16-bit), a folder of them, "
                            "or a video (.mp4, .mov, .mkv, .avi, .webm)",
                      positional=True)
    output: str = flag("out.png", "the output image, or the output folder when input is a folder", positional=True)
    model: str = flag(str(DEFAULT_MODEL), "weights: a .pt from convert.py or train.py (or an original "
                                                   ".t7)")
    gpu: int = flag(-1, "GPU id; -1 = CPU (the original ran on the CPU)")
    recombine: str = flag("", "yuv: colorize.lua's recombination (keeps the input Y, quirky L); lab: corrected "
                              "Lab recombination; empty = the model's own default", choices=["", "yuv", "lab"])
    max_side: int = flag(1600, "colorize at most at this long side and upsample the chroma onto the "
                               "full-resolution luminance (huge scans); 0 = the full resolution, as the original",
                         min=0)
    keep_size: int = flag(1, "1 = output at the input's size; 0 = the original's size (rounded to multiples of 8)",
                          min=0, max=1)
    save_ab: int = flag(0, "1 = also save the predicted chroma as OUTPUT_ab.npy (2 x H x W float32, Lab a and b)",
                        min=0, max=1)
    style_image: str = flag("", "take the global (scene) features from this photo instead (colorize.lua's "
                                "stylize pull request)")
    precision: str = flag("auto", "the network's arithmetic: fp32, bf16 (autocast), or auto = bf16 only where the "
                                  "CPU runs it natively (AVX512-BF16/AMX) or on a GPU, else fp32",
                          choices=["auto", "fp32", "bf16"])
    temperature: float = flag(0, "new, for a net trained with -loss classify: the annealed-mean temperature of its "
                                 "ab distribution (1 = the mean: muted where unsure; lower = more vivid); 0 = the "
                                 "model's own (train.py -temperature)", min=0)
    io_threads: int = flag(1, "folder runs: threads that read the next photos and write the previous ones while the "
                              "network works (0 = one photo at a time)", min=0, max=8)
    smooth: float = flag(0.9, "new, video: each frame's chroma is a mean over its shot's frames up to -smooth_window "
                              "before and after it, a frame d away weighted smooth^d where the picture did not "
                              "change (less where it moved); 0 = each frame on its own (colorize/video.py)")
    smooth_window: int = flag(8, "new, video: N, the frames before and after each frame in that mean (output is "
                                 "written N frames after input is read; 2N+1 frames held)", min=0, max=30)
    scene_cut: float = flag(0.08, "new, video: a mean luminance change (0..1) between frames above this starts a "
                                  "new shot (no smoothing across it)")
    max_frames: int = flag(-1, "new, video: stop after this many frames (-1 = all)", min=-1)


class Colorizer:
    """The model and options, loaded once; `__call__(in, out)` does one file: `predict` (the network) then
    `finish` (recombination and writing), which a folder run overlaps with the next photo's `predict`."""

    def __init__(self, opt):
        from colorize import pipeline
        from common.device import native_bf16, resolve_precision
        self.opt = opt
        self.device = pipeline.get_device(opt.gpu)
        self.precision = resolve_precision(opt.precision, self.device)
        if self.precision == "bf16" and self.device.type == "cpu" and not native_bf16():
            print("note: this CPU has no native bf16: -precision bf16 is emulated, far slower than fp32 (measured "
                  "190x on an AVX2 CPU); -precision auto picks fp32 here", file=sys.stderr)
        self.net, ck = pipeline.load_model(opt.model, self.device)
        self.net = pipeline.to_precision(self.net, self.device, self.precision)
        if opt.temperature:
            if not self.net.config.ab_grid:
                raise UserError(f"-temperature: {opt.model} regresses ab (trained without -loss classify); "
                                f"it has no distribution to anneal")
            self.net.config.temperature = opt.temperature
        self.mean = float(ck["mean"])
        self.recombine = opt.recombine or ck.get("recombine", "yuv")
        self.style = None
        if opt.style_image:
            y_style, _, _ = pipeline.read_image(opt.style_image)
            self.style = pipeline.style_features(self.net, y_style, self.mean, self.device)

    def __call__(self, src, dst, image=None):
        from colorize import pipeline
        self.finish(self.predict(image or pipeline.read_image(src), dst), dst)

    def predict(self, image, dst):
        """(luminance, alpha, colour) from pipeline.read_image -> what `finish` needs to write dst."""
        from colorize import pipeline
        y, alpha, _ = image
        pipeline.check_writable(dst)
        out, lum = pipeline.predict(self.net, self.mean, y, self.device, self.opt.max_side, bool(self.opt.keep_size),
                                    self.style, self.precision)
        return out, lum, alpha

    def finish(self, predicted, dst):
        import numpy as np

        from colorize import pipeline
        out, lum, alpha = predicted
        rgb, ab = pipeline.compose(out, lum, self.recombine, want_ab=bool(self.opt.save_ab))
        if alpha is not None and rgb.shape[:2] != alpha.shape:
            alpha = None  # -keep_size 0 changed the size; the original had no alpha either
        pipeline.write_image(dst, rgb, alpha)
        if ab is not None:
            np.save(Path(dst).with_name(Path(dst).stem + "_ab.npy"), ab)
        return dst


class _Done:
    """A job run at once, with a Future's result(): -io_threads 0 runs the same loop one photo at a time."""

    def __init__(self, fn, *args):
        try:
            self.value, self.error = fn(*args), None
        except UserError as e:
            self.value, self.error = None, e

    def result(self):
        if self.error:
            raise self.error
        return self.value


def colorize_folder(colorizer, src_dir, dst_dir, io_threads=1):
    """Every image in src_dir -> dst_dir. With io_threads > 0 the next photos are read and the previous ones
    recombined and written by a small thread pool while the network runs (numpy, PIL and torch release
    the GIL), so two cores are busy; the network itself runs in this thread, one photo at a time."""
    import contextlib
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from colorize import pipeline
    files = sorted(p for p in Path(src_dir).iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UserError(f"{src_dir}: no images in this folder")
    if os.path.isdir(dst_dir) and os.path.samefile(src_dir, dst_dir):
        raise UserError(f"{dst_dir}: the output folder must differ from the input folder (it would overwrite "
                        f"the originals)")
    try:
        os.makedirs(dst_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"{dst_dir}: cannot create the output folder ({e.strerror})") from None
    if not os.access(dst_dir, os.W_OK):
        raise UserError(f"{dst_dir}: cannot write there (permission denied)")
    done, skipped = 0, 0
    bar = tqdm(total=len(files), unit="img", disable=not sys.stderr.isatty())

    def attempt(fn, *args):  # a bad file is a warning and a count, not the end of the run
        nonlocal skipped
        try:
            return fn(*args)
        except UserError as e:
            tqdm.write(f"warning: skipping {e}", file=sys.stderr)
            skipped += 1
            bar.update()
            return None

    dst_of = lambda p: Path(dst_dir) / (p.name if p.suffix.lower() in pipeline.IMAGE_EXTS else p.stem + ".png")  # noqa: E731
    ahead = io_threads + 1 if io_threads else 0  # photos read in advance
    with ThreadPoolExecutor(io_threads) if io_threads else contextlib.nullcontext() as pool:
        submit = pool.submit if pool else _Done
        reads, writes = deque(submit(pipeline.read_image, p) for p in files[:ahead]), deque()
        for i, p in enumerate(files):
            if i + ahead < len(files):
                reads.append(submit(pipeline.read_image, files[i + ahead]))
            image = attempt(reads.popleft().result)
            predicted = image and attempt(colorizer.predict, image, dst_of(p))  # the network, in this thread
            if predicted:
                writes.append(submit(colorizer.finish, predicted, dst_of(p)))
            while writes and (len(writes) > io_threads or i == len(files) - 1):  # io_threads photos in flight
                if attempt(writes.popleft().result):
                    done += 1
                    bar.update()
    bar.close()
    print(f"colorized {done} image(s) into {dst_dir}" + (f"; skipped {skipped} bad file(s)" if skipped else ""))
    if done == 0:
        raise UserError(f"{src_dir}: none of its {len(files)} file(s) is a readable image")
    return done, skipped


def main(opt: ColorizeOptions):
    if not opt.input:
        raise UserError("usage: python colorize/colorize.py in.png out.png  (or in_dir/ out_dir/)")
    if not os.path.exists(opt.input):
        raise UserError(f"{opt.input}: no such file or folder")
    from colorize import pipeline
    from common.video import is_video_name
    if os.path.isfile(opt.input) and is_video_name(opt.input):  # in.mp4 out.mp4: colorize/video.py
        from colorize import video
        video.check(opt)
        return video.colorize_video(Colorizer(opt), opt)
    image = None
    if os.path.isfile(opt.input):  # fail on a bad image or output path before loading a 600 MB model
        image = pipeline.read_image(opt.input)
        if os.path.isdir(opt.output):
            opt.output = os.path.join(opt.output, Path(opt.input).name)
        if os.path.exists(opt.output) and os.path.samefile(opt.input, opt.output):  # ./a.png, /abs, links
            raise UserError(f"{opt.output}: is the input photo itself; give another output name (the photo "
                            f"would be replaced)")
        pipeline.check_writable(opt.output)
    colorizer = Colorizer(opt)
    if os.path.isdir(opt.input):
        return colorize_folder(colorizer, opt.input, opt.output, opt.io_threads)
    colorizer(opt.input, opt.output, image)
    print(f"wrote {opt.output}")


if __name__ == "__main__":
    run(main, parse(ColorizeOptions, sys.argv[1:]))
