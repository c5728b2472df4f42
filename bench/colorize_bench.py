"""colorize benchmark: quality after a fixed CPU budget on BSDS500, and inference speed/memory.

    python bench/colorize_bench.py [--minutes 15] [--skip-speed] [--speed-only] [--repeats 3]

Quality: train.py on bsds500/train (200 photos) for --minutes of *process CPU time* per run (one torch
thread, so other load on the machine does not change the result), once with the paper's L2 loss and once
with the chroma-weighted loss, the two runs side by side. Then every bsds500/val photo (100) is made gray
(Y = 0.299 R + 0.587 G + 0.114 B), colorized at full resolution, and compared with the original: PSNR,
SSIM, ab-error AuC (thresholds 0..150, Zhang et al. 2016) and Hasler-Suesstrunk colourfulness relative to
the originals'. Baselines measured in the same run on the same photos: the gray image itself, and a
per-pixel mean-ab predictor (the training set's mean ab at every pixel, on the gray's lightness).
Video (`--video-only` runs just this part, on a 500-iteration model or `--video-model`): flicker, the mean
|delta ab| between consecutive frames (not across a cut), and PSNR against the colour frames, of per-frame
colorization (`-smooth 0`) and of colorize/video.py's centred chroma window (`-smooth 0.9 -smooth_window 8`), on
a static-camera clip (one photo, sensor noise, H.264), a clip with a cut and a slow pan; beside them, for
comparison, two variants defined here: the previous default (causal moving averages of the chroma and of the
global features, 0.8) and the centred window plus a causal average of the global features.
Speed: CPU seconds and peak RSS of `colorize.py` for a 768x512 and a 4000x3000 photo with the paper-size
network (42M parameters; random weights, since the published ones cannot be downloaded here: the work is
the same), `-precision auto` and fp32, each beside its network-only figure from the same run; `-h` start-up;
folder throughput against one `colorize.py` call per file (CPU seconds), and the pipelined folder loop
(-io_threads 1) against one photo at a time on both cores (images per wall second).
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import ROOT, git_rev, machine, write_section  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data", "bsds500")
TRAIN_ARGS = ["-width", "4", "-image_size", "128", "-batch_size", "16", "-optimizer", "adadelta",
              "-learning_rate", "1.0", "-val_frac", "0.05", "-eval_every", "1000", "-save_every", "1000000",
              "-max_iters", "100000000", "-print_every", "200", "-gpu", "-1"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

EVAL = r'''
import json, sys, numpy as np, torch
from pathlib import Path
from PIL import Image
from skimage.color import rgb2lab, lab2rgb
torch.set_num_threads(1)
from colorize import metrics, pipeline, data
models, val_dir, train_dir, limit = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
files = sorted(Path(val_dir).glob("*.jpg"))[:limit or None]
# the mean-ab baseline: the training photos' mean a and b
ab_sum, n = np.zeros(2), 0
for f in sorted(Path(train_dir).glob("*.jpg")):
    lab = rgb2lab(np.asarray(Image.open(f).convert("RGB")))
    ab_sum += lab[..., 1:].reshape(-1, 2).sum(0); n += lab.shape[0] * lab.shape[1]
mean_ab = ab_sum / n
nets = {name: pipeline.load_model(p, torch.device("cpu")) for name, p in models.items()}
rows = {}
def add(name, out, ref):
    r = rows.setdefault(name, {"psnr": [], "ssim": [], "auc": [], "cf": [], "cf_ref": []})
    r["psnr"].append(metrics.psnr(out, ref)); r["ssim"].append(metrics.ssim(out, ref)); r["auc"].append(metrics.auc(out, ref))
    r["cf"].append(metrics.colourfulness(out)); r["cf_ref"].append(metrics.colourfulness(ref))
for f in files:
    ref = np.asarray(Image.open(f).convert("RGB"))
    y = (ref.astype(np.float32) / 255) @ data.Y_WEIGHTS
    gray = np.repeat((y * 255 + 0.5).astype(np.uint8)[..., None], 3, 2)
    add("gray input", gray, ref)
    L = rgb2lab(gray)[..., :1]
    const = np.concatenate([L, np.broadcast_to(mean_ab, L.shape[:2] + (2,))], -1)
    add("mean-ab predictor", (np.clip(lab2rgb(const), 0, 1) * 255 + 0.5).astype(np.uint8), ref)
    for name, (net, ck) in nets.items():
        for mode in ("yuv", "lab"):
            out, _ = pipeline.colorize_luminance(net, ck["mean"], y, torch.device("cpu"), mode, max_side=0)
            add(f"{name}, {mode} recombination", out, ref)
print(json.dumps({k: {m: float(np.mean(v)) for m, v in r.items()} | {"cf_ratio": float(np.sum(r["cf"]) / np.sum(r["cf_ref"]))}
                  for k, r in rows.items()}))
'''

SPEED = r'''
import json, resource, sys, time, torch
torch.set_num_threads(1)
from colorize import colorize, pipeline
from common.cli import parse
from common.device import resolve_precision
args = sys.argv[1:]
net_s = [0.0]
real = pipeline.predict_ab
def timed(*a, **k):  # the network alone (forward only), measured inside the same end-to-end run
    t = time.process_time()
    out = real(*a, **k)
    net_s[0] += time.process_time() - t
    return out
pipeline.predict_ab = timed
t0 = time.process_time()
opt = parse(colorize.ColorizeOptions, args)
out = colorize.main(opt)
print(json.dumps({"cpu_s": time.process_time() - t0, "net_s": net_s[0],
                  "precision": resolve_precision(opt.precision, torch.device("cpu")),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''

# a folder run timed by the wall clock, model loading and start-up excluded: the pipelined folder loop against
# one photo at a time (-io_threads 0), with one or two torch threads
FOLDER = r'''
import json, os, sys, time, torch
threads, io_threads = int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
from colorize import colorize
from common.cli import parse
opt = parse(colorize.ColorizeOptions, [sys.argv[1], sys.argv[2], "-model", sys.argv[3], "-io_threads", str(io_threads)])
c = colorize.Colorizer(opt)
w, t = time.perf_counter(), time.process_time()
done, _ = colorize.colorize_folder(c, opt.input, opt.output, io_threads)
print(json.dumps({"n": done, "wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - t,
                  "load": os.getloadavg()[0]}))
'''
# the other machine kind, measured there by earlier runs of this benchmark (kept beside this machine's figures)
AVX2_NOTE = ("On the AVX2-only machine kind (AMD EPYC, avx2, no native bf16, 2 cores; `-precision auto` is fp32 there), "
             "measured there by earlier runs of this benchmark, one thread, CPU seconds, machine shared: 2026-12-03 "
             "(commit before issue 21's changes): 768x512 end to end **2.20 CPU s** against **1.79** for the network "
             "alone (1.23x), peak 842 MB; `colorize.py -h` 0.07 CPU s; `-precision bf16` requested anyway is emulated "
             "by oneDNN there and took 416 CPU s (about 230x fp32). 2026-12-01 (commit 1f5e6c9): 768x512 4.2 CPU s, "
             "4000x3000 (-max_side 1600) 28.2 CPU s and 1642 MB. Not re-measured after this change (no such machine "
             "in this session).")
FOLDER_MODES = [("one photo at a time, 1 torch thread", 1, 0), ("one photo at a time, 2 torch threads", 2, 0),
                ("pipelined (-io_threads 1), 1 torch thread", 1, 1), ("pipelined (-io_threads 1), 2 torch threads", 2, 1)]


def train(loss, minutes, workdir):
    cmd = [sys.executable, os.path.join(ROOT, "colorize", "train.py"), "-data_dir", os.path.join(DATA, "train"),
           "-checkpoint_dir", os.path.join(workdir, loss), "-loss", loss, "-max_cpu_time", str(minutes * 60),
           *TRAIN_ARGS]
    log = open(os.path.join(workdir, f"{loss}.log"), "w")
    return cmd, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=workdir)


def photo(path, w, h, seed=0):
    """A real BSDS photo resized to w x h (so the network sees natural image statistics)."""
    from PIL import Image
    src = sorted(os.listdir(os.path.join(DATA, "val")))[seed]
    Image.open(os.path.join(DATA, "val", src)).convert("RGB").resize((w, h), Image.BICUBIC).save(path)


def children_cpu():
    """CPU seconds (user + system) of finished child processes: a load-independent clock for whole commands."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def speed(workdir, repeats=3):
    """Best of `repeats` fresh processes for each figure (CPU seconds; the network-only figure from the same run)."""
    import torch
    sys.path.insert(0, ROOT)
    from colorize.model import ColorNet, ColorNetConfig
    from common import checkpoint
    torch.manual_seed(0)
    net = ColorNet(ColorNetConfig(n_classes=205))
    model = os.path.join(workdir, "paper_size.pt")
    checkpoint.save(model, "colorize", {"model": net.state_dict(), "config": vars(net.config), "mean": 0.45,
                                        "recombine": "yuv"})
    startup = []
    for _ in range(repeats):
        c0 = children_cpu()
        subprocess.run([sys.executable, os.path.join(ROOT, "colorize", "colorize.py"), "-h"], check=True, env=ENV,
                       capture_output=True)
        startup.append(children_cpu() - c0)
    res = {"startup_s": min(startup), "runs": {}}
    cases = [(768, 512, 1600, "auto"), (768, 512, 1600, "fp32"), (768, 512, 0, "auto"), (4000, 3000, 1600, "auto"),
             (4000, 3000, 1600, "fp32")]
    for w, h in ((768, 512), (4000, 3000)):
        photo(os.path.join(workdir, f"p{w}.jpg"), w, h)
    for _ in range(repeats):   # interleaved, so a burst of load elsewhere does not fall on one case only
        for w, h, max_side, precision in cases:
            src = os.path.join(workdir, f"p{w}.jpg")
            r = subprocess.run([sys.executable, "-c", SPEED, src, os.path.join(workdir, f"o{w}.png"), "-model", model,
                                "-max_side", str(max_side), "-precision", precision],
                               capture_output=True, text=True, env=ENV, check=True)
            res["runs"].setdefault((w, h, max_side, precision), []).append(json.loads(r.stdout.strip().splitlines()[-1]))
    for key, runs in res["runs"].items():
        res[key] = min(runs, key=lambda v: v["cpu_s"])
        print(f"{key}: best {res[key]} of cpu_s {[round(v['cpu_s'], 2) for v in runs]}", flush=True)
    # folder throughput (CPU seconds): one process for the folder vs one colorize.py process per file
    folder, outdir = os.path.join(workdir, "folder"), os.path.join(workdir, "folder_out")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(folder)
    names = sorted(os.listdir(os.path.join(DATA, "val")))[:16]
    for n in names:
        os.symlink(os.path.join(DATA, "val", n), os.path.join(folder, n))
    c0 = children_cpu()
    subprocess.run([sys.executable, os.path.join(ROOT, "colorize", "colorize.py"), folder, outdir, "-model", model],
                   check=True, env=ENV, capture_output=True)
    folder_s = children_cpu() - c0
    c0 = children_cpu()
    for n in names[:8]:
        subprocess.run([sys.executable, os.path.join(ROOT, "colorize", "colorize.py"), os.path.join(folder, n),
                        os.path.join(outdir, "single_" + n), "-model", model], check=True, env=ENV, capture_output=True)
    single_s = (children_cpu() - c0) * len(names) / 8
    res["folder"] = {"n": len(names), "folder_s": folder_s, "single_s": single_s}
    print(res["folder"], flush=True)
    # folder throughput (wall clock, both cores): the pipelined loop against one photo at a time
    env = {k: v for k, v in ENV.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    res["wall"] = {m[0]: [] for m in FOLDER_MODES}
    for _ in range(repeats):
        for name, threads, io_threads in FOLDER_MODES:
            shutil.rmtree(outdir, ignore_errors=True)
            r = subprocess.run([sys.executable, "-c", FOLDER, folder, outdir, model, str(threads), str(io_threads)],
                               capture_output=True, text=True, env=dict(env, OMP_NUM_THREADS=str(threads)), check=True)
            res["wall"][name].append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(name, res["wall"][name][-1], flush=True)
    return res


def speed_lines(res, repeats):
    """The inference subsection of BENCHMARKS.md (its own markers, so --speed-only rewrites just this part)."""
    from common.device import native_bf16
    kind = ("native bf16 (AVX512-BF16/AMX): `-precision auto` = bf16 weights in channels-last"
            if native_bf16() else "no native bf16 (AVX2-only): `-precision auto` = fp32")
    load = os.getloadavg()
    lines = ["### Inference speed and memory (paper-size network, 42.35M parameters, CPU, one thread)", "",
             f"Machine: {machine()}; {kind}. Commit {git_rev()}, {time.strftime('%Y-%m-%d %H:%M')}. "
             f"Command: `python bench/colorize_bench.py --speed-only` (runs `make bench`'s inference part alone). "
             f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other jobs on the machine; "
             f"CPU seconds are robust to it, wall seconds are not).", "",
             "`python colorize/colorize.py photo.jpg out.png -model paper_size.pt -max_side N -precision P`, "
             f"one fresh process each, best of {repeats} (interleaved); CPU seconds (`time.process_time()`, "
             "`OMP_NUM_THREADS=1`) include model loading, reading, the network, recombination and writing "
             "(not Python start-up and `import torch`). The network-only figure is its forward pass timed inside "
             "the same run.", "",
             "| photo | -max_side | -precision (ran as) | CPU s end to end | network only | ratio | peak RSS |",
             "|---|---|---|---|---|---|---|"]
    for key, v in res.items():
        if isinstance(key, tuple):
            w, h, max_side, precision = key
            lines.append(f"| {w}x{h} | {max_side or '0 (full resolution, as the original)'} | {precision} "
                         f"({v['precision']}) | **{v['cpu_s']:.2f}** | {v['net_s']:.2f} | "
                         f"{v['cpu_s'] / v['net_s']:.2f}x | {v['peak_rss_mb']:.0f} MB |")
    lines += ["", f"`colorize.py -h` (start-up, imports only): {res['startup_s']:.2f} CPU s (best of {repeats}, "
                  f"user + system of the whole process)."]
    f = res["folder"]
    lines += ["", f"Folder of {f['n']} bsds500/val photos (481x321, `-precision auto`): one `colorize.py in_dir/ "
                  f"out_dir/` {f['n'] / f['folder_s']:.2f} images per CPU second vs one `colorize.py` call per file "
                  f"{f['n'] / f['single_s']:.2f} ({f['single_s'] / f['folder_s']:.1f}x; CPU seconds of the whole "
                  "commands, Python start-up and model loading included: the folder loads once; the per-file figure "
                  "from 8 of the 16 files).", "",
              f"Wall-clock throughput of the folder loop on both cores (same 16 photos, model loaded beforehand, "
              f"{repeats} runs per mode, interleaved; images per wall second, each run's 1-minute load average in "
              "brackets):", "",
              "| folder loop | images / wall s (each run) | best | CPU s per image |", "|---|---|---|---|"]
    base = max(r["n"] / r["wall_s"] for r in res["wall"][FOLDER_MODES[0][0]])
    for name, runs in res["wall"].items():
        best = max(r["n"] / r["wall_s"] for r in runs)
        lines.append(f"| {name} | " + ", ".join(f"{r['n'] / r['wall_s']:.2f} [{r['load']:.1f}]" for r in runs) +
                     f" | **{best:.2f}** ({best / base:.2f}x) | {min(r['cpu_s'] / r['n'] for r in runs):.2f} |")
    if native_bf16():
        lines += ["", AVX2_NOTE]
    return ["<!-- colorize-inference -->", *lines, "<!-- /colorize-inference -->"]


def cpu_used(models, workdir):
    """CPU seconds each run trained: stored in its checkpoint, or noted in cpu_seconds.json for a run stopped by hand."""
    import torch
    noted = {}
    if os.path.exists(os.path.join(workdir, "cpu_seconds.json")):
        noted = json.load(open(os.path.join(workdir, "cpu_seconds.json")))
    return {k: float(noted.get(k) or torch.load(p, map_location="cpu", weights_only=True).get("cpu_seconds", 0.0))
            for k, p in models.items()}


VIDEO = r'''
import json, sys, time, numpy as np, torch
from pathlib import Path
from PIL import Image
torch.set_num_threads(1)
from colorize import imageops, metrics, pipeline
from colorize.video import MOTION, VideoColorizer
from common import video
from common.device import resolve_precision
model, val_dir, workdir = sys.argv[1:4]
net, ck = pipeline.load_model(model, torch.device("cpu"))
precision = resolve_precision("auto", torch.device("cpu"))
net = pipeline.to_precision(net, torch.device("cpu"), precision)   # as colorize.py runs it
photos = [np.asarray(Image.open(f).convert("RGB"))[:320, :480] for f in sorted(Path(val_dir).glob("*.jpg"))[:3]]
rng = np.random.default_rng(0)
noisy = lambda a: np.clip(a + rng.normal(0, 3, a.shape), 0, 255).astype(np.uint8)
big = np.asarray(Image.fromarray(photos[2]).resize((720, 480), Image.BILINEAR))
clips = {"static camera (one photo, noise)": lambda k: noisy(photos[0]),
         "a cut (photo A, then B)": lambda k: noisy(photos[0] if k < 12 else photos[1]),
         "slow pan (2 px per frame)": lambda k: noisy(big[80:400, 2 * k:2 * k + 480])}

class GlobalAverage(VideoColorizer):
    # not the default, for comparison: the global features a causal moving average within the shot (0.8 on the
    # past) before the local path, as colorize/video.py did before the centred window
    _g, _shot = None, -1
    @torch.inference_mode()
    def _predict(self, y):
        if self._shot != len(self.cuts):
            self._g, self._shot = None, len(self.cuts)
        x2 = pipeline.prepare(y, self.mean, self.max_side)
        S, dtype = self.net.config.global_size, next(self.net.parameters()).dtype
        g = self.net.global_features(pipeline._as_input(imageops.scale(x2, S, S), self.net, self.device))[0].float()
        self._g = g if self._g is None else 0.8 * self._g + 0.2 * g
        ab = pipeline.predict_ab(self.net, x2, self.device, global_feats=self._g.to(dtype), precision=self.precision)
        return ab, imageops.scale(x2, ab.shape[2], ab.shape[1])

class Causal(GlobalAverage):
    # the previous default: no look-ahead; the chroma a motion-gated moving average of the past frames'
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.window, self._last = 0, None
    def _blend(self, cur):
        last, self._last = self._last, cur
        self.ab = cur.ab
        if last is not None and last.shot == cur.shot:
            w = self.smooth * np.exp(-np.abs(cur.y_ab - last.y_ab) / MOTION, dtype=np.float32)
            self.ab = w * self._ab + (1 - w) * cur.ab
        self._ab = self.ab
        return pipeline.compose(self.ab, cur.y, self.recombine)[0]

methods = [("per-frame (-smooth 0)", VideoColorizer, 0.0, 0),
           ("centred chroma window (-smooth 0.9 -smooth_window 8, the default)", VideoColorizer, 0.9, 8),
           ("previous default: causal averages of chroma and global features (0.8)", Causal, 0.8, 0),
           ("centred window (0.9, 8) + causal average of the global features", GlobalAverage, 0.9, 8)]
rows = []
for name, fn in clips.items():
    path = video.make_clip(Path(workdir) / "clip.mp4", fn, 24, fps=24)
    truth = list(video.frames(path))     # the decoded colour frames; the network sees their luminance
    ref = metrics.flicker(truth, [12] if "cut" in name else [])
    for method, cls, smooth, window in methods:
        vc = cls(net, ck["mean"], "cpu", ck.get("recombine", "yuv"), precision=precision, smooth=smooth,
                 window=window)
        t0 = time.process_time()
        out = list(vc.run(truth))
        cpu = (time.process_time() - t0) / len(out)
        rows.append({"clip": name, "method": method, "flicker": metrics.flicker(out, vc.cuts), "ref_flicker": ref,
                     "psnr": float(np.mean([metrics.psnr(o, t) for o, t in zip(out, truth)])), "cuts": vc.cuts,
                     "cpu_s": cpu})
        print(rows[-1], file=sys.stderr, flush=True)
# the PSNR margin on a steady shot is small (the noise averaged away is small beside the model's error), so its sign
# is checked on more static clips: eight other val photos, per-frame against the default
more = []
for f in sorted(Path(val_dir).glob("*.jpg"))[3:11]:
    photo = np.asarray(Image.open(f).convert("RGB"))[:320, :480]
    truth = list(video.frames(video.make_clip(Path(workdir) / "clip.mp4", lambda k: noisy(photo), 24, fps=24)))
    r = {}
    for method, cls, smooth, window in methods[:2]:
        vc = cls(net, ck["mean"], "cpu", ck.get("recombine", "yuv"), precision=precision, smooth=smooth,
                 window=window)
        out = list(vc.run(truth))
        r[smooth] = (float(np.mean([metrics.psnr(o, t) for o, t in zip(out, truth)])), metrics.flicker(out, vc.cuts))
    more.append({"photo": f.name, "psnr": [r[0.0][0], r[0.9][0]], "flicker": [r[0.0][1], r[0.9][1]]})
    print(more[-1], file=sys.stderr, flush=True)
print(json.dumps({"rows": rows, "more": more, "precision": precision, "recombine": ck.get("recombine", "yuv")}))
'''


def video_flicker(model, workdir):
    """Per-frame vs temporally smoothed colorization on three generated clips (VIDEO above, one process)."""
    sys.path.insert(0, ROOT)
    from common import datasets  # TORCH_CLASSICS_DATA, else ../shared/data beside the repository
    r = subprocess.run([sys.executable, "-c", VIDEO, model, str(datasets.path("bsds500") / "val"), workdir],
                       capture_output=True, text=True, env=ENV, cwd=ROOT)
    if r.returncode:
        sys.exit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def video_section(res, model_note):
    from common.device import native_bf16
    kind = "native bf16 (AVX512-BF16/AMX)" if native_bf16() else "AVX2 only, no native bf16"
    lines = ["## colorize: video flicker", "",
             f"Machine: {machine()}; {kind}. Commit {git_rev()}, {time.strftime('%Y-%m-%d %H:%M')}. Command: "
             "`python bench/colorize_bench.py` (this part alone: `python bench/colorize_bench.py --video-only`). "
             "Model: " + model_note + f"; recombination {res['recombine']}, precision {res['precision']}.", "",
             "Clips: 24 frames of 480x320 made from bsds500/val photos with sensor noise (sigma 3 grey levels) and "
             "H.264 (crf 18); the gray input is the decoded frames' luminance, the reference their colour. "
             "Flicker: mean |delta ab| (Lab) between consecutive frames, pairs across the detected cut left out; "
             "the decoded colour frames' own flicker (their noise) is given for scale. PSNR: mean over the frames "
             "against the colour frames. Per-frame = `-smooth 0` (exactly colorize.py on each frame as a photo); "
             "the default = each frame's chroma the motion-gated mean of its shot's frames up to 8 before and after "
             "(colorize/video.py). The last two rows are variants the benchmark defines for comparison (the "
             "previous default, and the window with averaged global features). CPU seconds per frame "
             "(`time.process_time()`, one thread, the machine shared with other jobs).", "",
             "| clip | method | flicker (mean abs delta ab) | vs per-frame | PSNR (dB) | vs per-frame (dB) | "
             "shots found | CPU s / frame |",
             "|---|---|---|---|---|---|---|---|"]
    base = {}
    for r in res["rows"]:
        if r["method"].startswith("per-frame"):
            base[r["clip"]] = r
        b = base[r["clip"]]
        lines.append(f"| {r['clip']} (colour frames: {r['ref_flicker']:.2f}) | {r['method']} | {r['flicker']:.3f} | "
                     f"{r['flicker'] / b['flicker']:.2f}x | {r['psnr']:.3f} | {r['psnr'] - b['psnr']:+.4f} | "
                     f"{len(r['cuts'])} | {r['cpu_s']:.3f} |")
    more = res.get("more", [])
    if more:
        d = [m["psnr"][1] - m["psnr"][0] for m in more]
        ratio = [m["flicker"][1] / m["flicker"][0] for m in more]
        lines += ["", f"{len(more)} more static-camera clips (bsds500/val photos 4-{3 + len(more)}, made the same way), "
                  f"per-frame against the default: PSNR change mean **{sum(d) / len(d):+.4f} dB** (min {min(d):+.4f}, "
                  f"max {max(d):+.4f}; {sum(x >= 0 for x in d)} of {len(d)} not lower), flicker "
                  f"{sum(ratio) / len(ratio):.2f}x per-frame (min {min(ratio):.2f}x, max {max(ratio):.2f}x). Per clip: " +
                  ", ".join(f"{m['photo'][:-4]} {m['psnr'][0]:.3f} -> {m['psnr'][1]:.3f}" for m in more) + " dB."]
    return lines


def small_model(workdir):
    """A small colorization model as make demo trains one, for --video-only: 500 iterations (about 70 CPU seconds
    here), seed 123, one thread, so every run measures the same model (a CPU-time budget gave 430-550 iterations
    by the load)."""
    data = os.path.join(workdir, "photos")
    subprocess.run([sys.executable, "-m", "colorize.demo", "photos", data], check=True, env=ENV, cwd=ROOT,
                   capture_output=True)
    cv = os.path.join(workdir, "small_cv")
    subprocess.run([sys.executable, os.path.join(ROOT, "colorize", "train.py"), "-data_dir", os.path.join(data, "train"),
                    "-val_dir", os.path.join(data, "heldout"), "-checkpoint_dir", cv, "-width", "4", "-image_size",
                    "128", "-batch_size", "16", "-loss", "l2", "-max_iters", "500", "-eval_every", "100000",
                    "-save_every", "1000000", "-gpu", "-1"], check=True, env=ENV, cwd=ROOT, capture_output=True)
    return max((os.path.join(cv, f) for f in os.listdir(cv) if f.endswith(".pt")), key=os.path.getmtime)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="only the inference part: rewrites just that "
                    "subsection of BENCHMARKS.md (a few minutes)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per inference figure (best is kept)")
    ap.add_argument("--workdir", default="", help="keep checkpoints and logs here (default: a temp folder)")
    ap.add_argument("--limit", type=int, default=0, help="evaluate on the first N val photos only (a quick check)")
    ap.add_argument("--reuse", action="store_true", help="evaluate the checkpoints a previous run left in --workdir")
    ap.add_argument("--batch-size", type=int, default=8, help="training batch (8: twice the updates of 16 per CPU "
                    "second, which matters on a slow CPU)")
    ap.add_argument("--video-only", action="store_true", help="only the video flicker part (a 500-iteration model as "
                    "make demo trains one, or --video-model)")
    ap.add_argument("--video-model", default="", help="the model for --video-only")
    args = ap.parse_args()
    if args.video_only:
        workdir = args.workdir or tempfile.mkdtemp(prefix="colorize_bench_")
        os.makedirs(workdir, exist_ok=True)
        model = args.video_model or small_model(workdir)
        note = (f"`{os.path.basename(model)}`" if args.video_model else
                "the demo's data (`colorize/demo.sh`'s photos, 1/4 width, l2 loss), 500 iterations, seed 123 "
                "(about 70 CPU seconds of training)")
        lines = video_section(video_flicker(model, workdir), note)
        write_section("colorize-video", "\n".join(lines))
        print("\n".join(lines))
        return
    TRAIN_ARGS[TRAIN_ARGS.index("-batch_size") + 1] = str(args.batch_size)
    workdir = args.workdir or tempfile.mkdtemp(prefix="colorize_bench_")
    os.makedirs(workdir, exist_ok=True)
    t_start = time.time()
    if args.speed_only:
        lines = speed_lines(speed(workdir, args.repeats), args.repeats)
        write_section("colorize-inference", "\n".join(lines[1:-1]))
        print("\n".join(lines))
        return
    losses = ("l2", "weighted")
    runs = {} if args.reuse else {loss: train(loss, args.minutes, workdir) for loss in losses}
    speed_res = None
    curves, models = {}, {}
    for loss in losses:
        if loss in runs and runs[loss][1].wait() != 0:
            sys.exit(f"training with -loss {loss} failed; see {workdir}/{loss}.log")
        text = open(os.path.join(workdir, f"{loss}.log")).read()
        curves[loss] = re.findall(r"iteration (\d+): validation PSNR (\S+) dB", text)
        models[loss] = re.findall(r"saved (\S+\.pt)", text)[-1]
        models[loss] = os.path.join(workdir, models[loss]) if not os.path.isabs(models[loss]) else models[loss]
    print("evaluating on bsds500/val", flush=True)
    ev = subprocess.Popen([sys.executable, "-c", EVAL, json.dumps({f"ours ({k} loss)": v for k, v in models.items()}),
                           os.path.join(DATA, "val"), os.path.join(DATA, "train"), str(args.limit)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    out, err = ev.communicate()
    if ev.returncode:
        sys.exit(err)
    if not args.skip_speed:
        speed_res = speed(workdir, args.repeats)   # after training and evaluation: the wall-clock figures need quiet
    q = json.loads(out.strip().splitlines()[-1])
    used = cpu_used(models, workdir)
    iters = {k: (int(re.search(r"colornet_iter(\d+)\.pt", v).group(1)), used[k]) for k, v in models.items()}
    full = all(abs(c - args.minutes * 60) < 30 for _, c in iters.values())
    budget = (f"{args.minutes:g} CPU minutes" if full
              else " and ".join(f"{c / 60:.1f} ({k})" for k, (_, c) in iters.items()) + " CPU minutes")
    stopped = "" if full else (f" The runs were stopped before their {args.minutes:g}-minute budget (the shared machine "
                               "gave each about a fifth of a core, so the full budget did not fit the session); "
                               "their CPU seconds were read from /proc when they were stopped.")

    lines = ["## colorize", "",
             f"Machine: {machine()}. Commit {git_rev()}, {time.strftime('%Y-%m-%d')}. Command: `make bench` "
             f"(`python bench/colorize_bench.py --minutes {args.minutes:g}`); wall time {time.time() - t_start:.0f} s" +
             (" (evaluation and speed re-run with `--reuse` on that run's checkpoints)." if args.reuse else "."),
             "Budgets are CPU seconds of the training process (`time.process_time()`, one torch thread), so load "
             "from other work on the machine does not change the result; the baselines are computed in the same "
             "run on the same photos.", "",
             f"### Quality after {budget} of training on bsds500/train (200 photos)", "",
             "`python colorize/train.py -data_dir bsds500/train " + " ".join(TRAIN_ARGS) +
             f" -max_cpu_time {args.minutes * 60:g} -loss l2|weighted` (a 1/4-width network, 1.56M parameters, "
             f"128-pixel crops; iterations and CPU seconds reached: " +
             ", ".join(f"{k} {i} in {c:.0f} s" for k, (i, c) in iters.items()) + ")." + stopped,
             "Evaluated on all 100 bsds500/val photos, gray input at full resolution (481x321), against the "
             "originals. AuC: mean share of pixels whose ab error is within 0..150 (Zhang et al. 2016). "
             "Colourfulness: Hasler-Suesstrunk, as a fraction of the originals' (sum over photos).", "",
             "| method | PSNR (dB) | SSIM | AuC (ab) | colourfulness vs originals |", "|---|---|---|---|---|"]
    for name, m in q.items():
        lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['auc']:.4f} | {m['cf_ratio']:.3f} |")
    lines += ["", "Validation PSNR during training (10 held-out training photos, lab recombination): " +
              "; ".join(f"{k}: " + ", ".join(f"{i}: {p}" for i, p in v) for k, v in curves.items()) + ".", ""]
    if speed_res:
        lines += speed_lines(speed_res, args.repeats)
    write_section("colorize", "\n".join(lines))
    print("\n".join(lines))
    video_lines = video_section(video_flicker(models["l2"], workdir), f"the l2 run above ({iters['l2'][0]} iterations)")
    write_section("colorize-video", "\n".join(video_lines))
    print("\n".join(video_lines))


if __name__ == "__main__":
    main()
