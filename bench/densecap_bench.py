"""densecap benchmark: CPU seconds and peak RSS for one 720-px image (elephant.jpg), VGG-16 FCLN.

    python bench/densecap_bench.py [--image ../shared/data/densecap_demo/elephant.jpg] [--repeats 3]

Each configuration runs in its own process (so peak RSS is its own) with one torch thread, and is timed
in CPU seconds of that process (time.process_time), so load from other work on the machine changes the
figure little. Ours (densecap.model.forward_test: bf16 trunk and fc6/fc7 where the CPU runs bf16 natively,
batched RoI features through roi_align, an NMS that stops at -num_proposals, captions for the kept boxes
only) at fp32 and bf16, each beside its own trunk alone at the same precision, and the baseline: the same
trunk and RPN, then a plain per-region loop (bilinear sampler, fc6/fc7, heads and greedy captioning one
region at a time, captions for every proposal before the final NMS, as the Lua forward pass did).
Then run_model.py itself (`main()` on the image: checkpoint loading, decoding, the network, results.json),
a folder run with 2 threads against the same run with its read-ahead/write-behind pool replaced by
inline calls (wall seconds: the machine must be quiet; the load average is printed), and `-h` start-up.
Weights are random (the released model cannot be downloaded here): the work per image is the same for
any weights, except how many boxes survive the NMS steps (printed).
The original's users reported ~22 minutes for this image on CPU (jcjohnson/densecap#65).
"""
import argparse
import json
import os
import resource
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import ROOT, git_rev, isa, machine, write_section  # noqa: E402

from common.datasets import data_root  # noqa: E402  (TORCH_CLASSICS_DATA, else ../shared/data beside the checkout)

OUT = os.path.join(ROOT, "bench", "out", "densecap")
CKPT = os.path.join(OUT, "random_vgg16.pt")
FOLDER = str(data_root() / "coco_mini_train" / "train2017")

WORKER = r'''
import json, os, resource, sys, time
import torch
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
from common.device import autocast
from densecap import box_utils
from densecap.loader import load_image
from densecap.localization import roi_features_grid
from densecap.model import DenseCapModel, ModelConfig
from torchvision.ops import nms

kind, precision, proposals, image = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_model():
    torch.manual_seed(0)
    return DenseCapModel(ModelConfig(vocab_size=10000, seq_length=15))


@torch.inference_mode()
def per_region_loop(model, x, num_proposals):
    H, W = x.shape[-2:]
    feats = model.extract_features(x)
    _, boxes, _ = model.localization.forward_test(feats, (H, W), 0.7, num_proposals)
    scores, finals, seqs = [], [], []
    for b in boxes:  # one region at a time: sampler, fc6/fc7, heads, greedy caption
        roi = roi_features_grid(feats, b[None], H, W)
        code = model.recog_base(roi.flatten(1))
        scores.append(model.objectness(code)[0, 0])
        finals.append(box_utils.apply_box_transform(b[None], model.box_reg(code))[0])
        seqs.append(model.lm.sample(model.lm_encoder(code))[0][0])
    scores, finals = torch.stack(scores), torch.stack(finals)
    finals, _ = box_utils.clip_boxes(finals, H, W)
    keep = nms(box_utils.xcycwh_to_x1y1x2y2(finals), scores, 0.3)
    return finals[keep], scores[keep], torch.stack(seqs)[keep]


class StageClock:
    """CPU seconds (process_time) per stage, by wrapping the functions and modules forward_test calls: each
    call's time minus that of the wrapped calls inside it (its self time), so the stages add up."""

    def __init__(self):
        self.t, self.calls, self.stack = {}, {}, []

    def wrap(self, label, fn):
        def timed(*a, **k):
            lab = label() if callable(label) else label
            t0 = time.process_time()
            self.stack.append(0.0)
            try:
                return fn(*a, **k)
            finally:
                el, inner = time.process_time() - t0, self.stack.pop()
                self.t[lab] = self.t.get(lab, 0.0) + el - inner
                self.calls[lab] = self.calls.get(lab, 0) + 1
                if self.stack:
                    self.stack[-1] += el
        return timed


def install_clock(model):
    """Wrap the stages of forward_test (and run_model's per-image steps) in one StageClock."""
    import densecap.localization as loc
    import densecap.model as dm
    from densecap import run_model
    clock = StageClock()
    seen = {"recog": False, "nms": 0}
    final = lambda a, b: (lambda: b if seen["recog"] else a)  # noqa: E731  (before/after fc6/fc7)

    def recog(fn):
        def f(*a, **k):
            seen["recog"] = True
            return fn(*a, **k)
        return f

    def nms(fn):
        def f(*a, **k):
            seen["nms"] += 1
            return fn(*a, **k)
        return f
    model.extract_features = clock.wrap("trunk", model.extract_features)
    rpn = model.localization.rpn
    for m in (rpn.conv, rpn.box_conv, rpn.score_conv):
        m.forward = clock.wrap("RPN conv + 1x1 heads", m.forward)
    rpn.forward = clock.wrap("anchor decode + clip", rpn.forward)
    box_utils.clip_boxes = clock.wrap(final("anchor decode + clip", "box/score heads + decode"), box_utils.clip_boxes)
    box_utils.nms = nms(clock.wrap(lambda: "RPN NMS" if seen["nms"] == 1 else "final NMS", box_utils.nms))
    loc.roi_features = clock.wrap("RoI bilinear sampling", loc.roi_features)
    model.recog_base.forward = recog(clock.wrap("fc6/fc7", model.recog_base.forward))
    for m in (model.objectness, model.box_reg):
        m.forward = clock.wrap("box/score heads + decode", m.forward)
    box_utils.apply_box_transform = clock.wrap(final("anchor decode + clip", "box/score heads + decode"),
                                               box_utils.apply_box_transform)
    model.lm_encoder.forward = clock.wrap("captioning", model.lm_encoder.forward)
    dm.greedy_captions = clock.wrap("captioning", dm.greedy_captions)
    inner = model.forward_test
    def forward_test(*a, **k):
        seen["recog"], seen["nms"] = False, 0
        return inner(*a, **k)
    model.forward_test = clock.wrap("rest of forward_test", forward_test)
    run_model.detect = clock.wrap("post-processing (xywh, rounding, words)", run_model.detect)
    run_model.save_images = clock.wrap("results writing (image, results.json)", run_model.save_images)
    run_model.write_results = clock.wrap("results writing (image, results.json)", run_model.write_results)
    return clock


if kind == "stages":  # one warm forward_test per stage clock reading, then run_model's own per-image steps
    import tempfile
    from common.cli import parse
    import densecap.checkpoints  # noqa: F401  (run_model.main has imported it before its first image)
    from densecap import run_model
    if os.environ.get("BENCH_KEEP_FREED", "1") == "1":
        run_model.keep_freed_memory()
    model = random_model().to_inference(precision)
    t0 = time.process_time()
    img, x = load_image(image, 720)
    load_s = time.process_time() - t0
    model.forward_test(x[..., :64, :64], 0.7, 0.3, 10)
    clock = install_clock(model)
    out = tempfile.mkdtemp()
    opt = parse(run_model.RunOptions, ["-num_proposals", str(proposals), "-output_vis_dir", out])
    runs = []
    for rep in range(2):
        clock.t.clear()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        result = run_model.detect(model, x, image, opt, "cpu", {str(i): f"w{i}" for i in range(1, 10001)})
        run_model.save_images(img, result, opt)
        run_model.write_results([result], opt, open(os.devnull, "w"))
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        runs.append({"stages": dict(clock.t), "user_s": r1.ru_utime - r0.ru_utime, "sys_s": r1.ru_stime - r0.ru_stime,
                     "minflt": r1.ru_minflt - r0.ru_minflt, "boxes": len(result["boxes"])})
    print(json.dumps({"load_s": load_s, "runs": runs, "captioned": runs[-1]["boxes"], "peak_rss_mb": rss(),
                      "load_avg": os.getloadavg()[0]}))
elif kind in ("ours", "loop"):
    from densecap.run_model import keep_freed_memory
    keep_freed_memory()  # as run_model.py: freed activations stay in the heap (no page faults per image)
    model = random_model().to_inference(precision if kind == "ours" else "fp32")
    _, x = load_image(image, 720)
    if kind == "ours":
        run = lambda: model.forward_test(x, 0.7, 0.3, proposals)  # noqa: E731
    else:
        run = lambda: per_region_loop(model, x, proposals)  # noqa: E731
    model.forward_test(x[..., :64, :64], 0.7, 0.3, 10)   # warm-up: allocator, kernels
    t0, w0 = time.process_time(), time.perf_counter()
    boxes, scores, seqs = run()
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    xt = x.contiguous(memory_format=torch.channels_last) if model.precision != "fp32" else x
    t1 = time.process_time()
    with torch.inference_mode(), autocast(x.device, model.precision):
        model.extract_features(xt)
    trunk = time.process_time() - t1
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "trunk_cpu_s": trunk, "boxes": len(boxes),
                      "peak_rss_mb": rss(), "size": list(x.shape[-2:])}))
elif kind == "save":
    from densecap.checkpoints import save_model
    save_model(image, random_model(), {str(i): f"w{i}" for i in range(1, 10001)})
    print(json.dumps({}))
else:  # "cli" (one image) or "folder": run_model.main as the script runs it; "inline": no worker pool
    import concurrent.futures
    from common.cli import parse
    from densecap import run_model
    import densecap.checkpoints  # noqa: F401  (imported lazily by main(); not timed)
    if kind == "inline":
        class Inline(concurrent.futures.Executor):
            def submit(self, fn, *a, **k):
                f = concurrent.futures.Future()
                try:
                    f.set_result(fn(*a, **k))
                except Exception as e:  # noqa: BLE001
                    f.set_exception(e)
                return f
        concurrent.futures.ThreadPoolExecutor = lambda n: Inline()
    ckpt, out = sys.argv[5], sys.argv[6]
    where = ["-input_image", image] if kind == "cli" else ["-input_dir", image]
    t0, w0 = time.process_time(), time.perf_counter()
    res = run_model.main(parse(run_model.RunOptions, ["-checkpoint", ckpt, *where, "-gpu", "-1", "-max_images", "4",
                                                      "-output_vis_dir", out, "-precision", precision]))
    print(json.dumps({"cpu_s": time.process_time() - t0, "wall_s": time.perf_counter() - w0, "images": len(res),
                      "peak_rss_mb": rss(), "load_avg": os.getloadavg()[0]}))
'''


def run_worker(kind, precision, proposals, image, *extra, threads=1, extra_env=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), BENCH_THREADS=str(threads),
               PYTHONPATH=ROOT, **(extra_env or {}))
    out = subprocess.run([sys.executable, "-c", WORKER, kind, precision, str(proposals), image, *extra], cwd=ROOT,
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{kind} {precision} {proposals} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def startup_cpu_s(script):
    """user+sys CPU seconds of `python SCRIPT -h` in a fresh process (imports included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, script, "-h"], cwd=ROOT, capture_output=True, check=True,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


STAGE_KEYS = ("trunk", "RPN conv + 1x1 heads", "anchor decode + clip", "RPN NMS", "RoI bilinear sampling", "fc6/fc7",
              "box/score heads + decode", "final NMS", "captioning", "rest of forward_test")


def old_blocks():
    """{kind: text} of the machine-kind blocks now in BENCHMARKS.md's densecap section (kept when another
    kind of machine runs the bench)."""
    import re

    from report import PATH
    text = open(PATH, encoding="utf-8").read() if os.path.exists(PATH) else ""
    return {m.group(1): m.group(0) for m in re.finditer(r"<!-- densecap:(\w+) -->.*?<!-- /densecap:\1 -->", text, re.S)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=str(data_root() / "densecap_demo" / "elephant.jpg"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-repeats", type=int, default=1,
                    help="rounds that also run the per-region loop (~2-3 CPU minutes at 1000 proposals); 0 = skip it")
    ap.add_argument("--bf16-trunk-fc", type=float, default=2.3,
                    help="on a CPU without native bf16: CPU s of the trunk + fc6/fc7 in bf16 measured on an "
                         "AVX512-BF16 CPU (issue 21: 1.14 + ~1.16), for the estimate of the whole image there")
    ap.add_argument("--skip-live", action="store_true", help="do not run bench/live_bench.py afterwards")
    args = ap.parse_args()
    from common.device import native_bf16
    precisions = ["fp32", "bf16"] if native_bf16() else ["fp32"]  # emulated bf16 is ~100x slower: skip it
    results = {}
    for rep in range(args.repeats):  # interleaved: every configuration once per round
        for proposals in (1000, 300):
            kinds = [("ours", p) for p in precisions] + ([("loop", "fp32")] if rep < args.loop_repeats else [])
            for kind, precision in kinds:
                r = run_worker(kind, precision, proposals, args.image)
                print(f"{kind} {precision} -num_proposals {proposals}: {r['cpu_s']:.2f} CPU s ({r['wall_s']:.1f} s "
                      f"wall), trunk {r['trunk_cpu_s']:.2f} s, {r['boxes']} boxes, peak RSS {r['peak_rss_mb']:.0f} MB",
                      flush=True)
                results.setdefault((kind, precision, proposals), []).append(r)
    best = {k: min(v, key=lambda r: r["cpu_s"]) for k, v in results.items()}
    size = best[("ours", "fp32", 1000)]["size"]
    stages = {}
    for rep in range(args.repeats):
        for p in precisions:
            r = run_worker("stages", p, 1000, args.image)
            print(f"stages {p}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["runs"][-1]["stages"].items()), flush=True)
            stages.setdefault(p, []).append(r)
    nofree = run_worker("stages", "fp32", 1000, args.image, extra_env={"BENCH_KEEP_FREED": "0"})

    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(CKPT):
        run_worker("save", "fp32", 0, CKPT)
    cli = {}
    for rep in range(args.repeats):
        for p in precisions:
            r = run_worker("cli", p, 0, args.image, CKPT, os.path.join(OUT, "vis"))
            print(f"run_model.main one image {p}: {r['cpu_s']:.2f} CPU s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
            cli.setdefault(p, []).append(r)
    cli = {p: min(v, key=lambda r: r["cpu_s"]) for p, v in cli.items()}
    folder = {}
    for rep in range(args.repeats):
        for kind in ("folder", "inline"):
            r = run_worker(kind, "auto", 0, FOLDER, CKPT, os.path.join(OUT, "vis"), threads=2)
            print(f"folder run ({kind}), 2 threads: {r['images']} images in {r['wall_s']:.1f} s wall "
                  f"({r['images'] / r['wall_s']:.3f} img/s), load average {r['load_avg']:.1f}", flush=True)
            folder.setdefault(kind, []).append(r)
    startup = {s: min(startup_cpu_s(f"densecap/{s}") for _ in range(3))
               for s in ("run_model.py", "extract_features.py", "convert.py")}

    rows = []
    for proposals in (1000, 300):
        b = best.get(("loop", "fp32", proposals))
        for p in precisions:
            o = best[("ours", p, proposals)]
            loop = f"{b['cpu_s']:.2f} | {b['peak_rss_mb']:.0f} | {b['cpu_s'] / o['cpu_s']:.1f}x" if b else "- | - | -"
            rows.append(f"| {proposals} | {p} | **{o['cpu_s']:.2f}** | {o['trunk_cpu_s']:.2f} | "
                        f"{o['cpu_s'] / o['trunk_cpu_s']:.2f}x | {o['peak_rss_mb']:.0f} | {o['boxes']} | {loop} |")
    runs = "; ".join(f"{k[0]} {k[1]} {k[2]}: [{', '.join('%.2f' % r['cpu_s'] for r in v)}]" for k, v in results.items())
    fold = {k: max(v, key=lambda r: r["images"] / r["wall_s"]) for k, v in folder.items()}
    fold_runs = "; ".join(f"{k}: [{', '.join('%.3f (load %.1f)' % (r['images'] / r['wall_s'], r['load_avg']) for r in v)}]"
                          for k, v in folder.items())
    rate = {k: r["images"] / r["wall_s"] for k, r in fold.items()}
    n_img = fold["folder"]["images"]
    cli_rows = ", ".join(f"{p} **{r['cpu_s']:.2f}** CPU s (peak RSS {r['peak_rss_mb']:.0f} MB)" for p, r in cli.items())
    kind = "bf16" if native_bf16() else "avx2"
    auto = "bf16" if native_bf16() else "fp32"
    # the stage table: per precision the run whose forward_test was cheapest, its second (warm) image
    warm = {p: min((r["runs"][-1] for r in v), key=lambda r: sum(r["stages"][k] for k in STAGE_KEYS))
            for p, v in stages.items()}
    names = list(warm[precisions[0]]["stages"])
    stage_rows = []
    for n in names:
        cells = " | ".join(f"{warm[p]['stages'][n]:.3f}" for p in precisions)
        stage_rows.append(f"| {n} | {cells} |")
    tot = {p: sum(warm[p]["stages"][k] for k in STAGE_KEYS) for p in precisions}
    other = {p: tot[p] - warm[p]["stages"]["trunk"] - warm[p]["stages"]["fc6/fc7"] for p in precisions}
    stage_rows.append("| **forward_test, all stages** | " + " | ".join(f"**{tot[p]:.3f}**" for p in precisions) + " |")
    stage_rows.append("| of which not the trunk or fc6/fc7 | " + " | ".join(f"{other[p]:.3f}" for p in precisions) + " |")
    nf = nofree["runs"][-1]
    fw = warm["fp32"]
    if native_bf16():
        estimate = ""
    else:
        estimate = f"""
**Estimate for an AVX512-BF16 CPU** (not measured here: this CPU has no native bf16): the trunk and fc6/fc7 in
bf16 as measured there, {args.bf16_trunk_fc:.2f} CPU s (`--bf16-trunk-fc`), plus what runs in float32 on both
machines, measured here: {other['fp32']:.2f} s, gives **about {args.bf16_trunk_fc + other['fp32']:.2f} CPU s** per image at 1000
proposals (target 3). An upper bound as far as this part goes: those float32 parts are mostly GEMMs (the
captioning LSTM and its 10,001-word logit layer, the RPN conv), which AVX512 runs faster than AVX2.
The {args.bf16_trunk_fc:.2f} s was measured before `keep_freed_memory`, so it still holds that machine's page faults.
"""
    loop_flag = f" --loop-repeats {args.loop_repeats}" if args.loop_repeats != 1 else ""
    auto_note = (": the trunk and fc6/fc7 in bf16 autocast with bf16 weights and channels-last, the RPN, RoI sampling, "
                 "box coordinates, NMS and captioning in float32" if native_bf16()
                 else " (bf16 would be emulated, far slower: not run)")
    block = f"""<!-- densecap:{kind} -->
### {"AVX512-BF16 CPU" if native_bf16() else "AVX2-only CPU (float32)"}

`python bench/densecap_bench.py --repeats {args.repeats}{loop_flag}` on {machine()}; git {git_rev()}.
Image: elephant.jpg resized to {size[1]}x{size[0]}. One torch thread; **CPU seconds of the worker process**
(`time.process_time()`, user + system), so other load on the machine changes them little; each configuration in its own
process (peak RSS is its own), all interleaved in the same run; best of {args.repeats} (the per-region loop:
{args.loop_repeats or "not run"}). "trunk" is the VGG-16 trunk alone at the same precision in the same process.
`-precision auto` picks {auto} on this CPU ({isa()}){auto_note}.
Every worker calls `run_model.keep_freed_memory()` first, as run_model.py, extract_features.py and webcam.py do.

| -num_proposals | precision | ours: CPU s/image | trunk alone: CPU s | ours / trunk | peak RSS MB | final boxes \
| per-region loop (fp32): CPU s | loop: peak RSS MB | speed-up |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

All runs (CPU s): {runs}.

Where the time goes at 1000 proposals: CPU s per stage of one warm `forward_test` (the second image in the
process), then run_model.py's own steps for that image (`detect`'s conversion to the output lists and words,
`save_images` + `write_results`), each the self time of the functions and modules forward_test calls, timed by
wrapping them (`StageClock` in the worker); best of {args.repeats} processes (1-minute load average at their
ends: {", ".join("%.1f" % r["load_avg"] for v in stages.values() for r in v)}: CPU seconds too grow when the 2 cores are shared by
more processes than cores, through the caches). Loading and resizing the image
(`loader.load_image`, JPEG decode + the original's bilinear scale): {min(r['load_s'] for v in stages.values() for r in v):.3f} s.
Captioning is the {fw['boxes']} boxes the final NMS keeps, never the 1000 proposals; with random weights every
caption runs all 15 steps, the most there is (Visual Genome's phrases are about 5 words: a trained model's
captions end early, and `greedy_captions` drops each from the batch when it ends).

| stage | {" | ".join(precisions)} |
|---|{"---:|" * len(precisions)}
{chr(10).join(stage_rows)}

The same fp32 image without `keep_freed_memory` (glibc then maps and unmaps every block over 32 MB, so each
activation is faulted in afresh): {nf['minflt']:,} page faults and {nf['sys_s']:.2f} s of system time per image; with it
{fw['minflt']:,} faults, {fw['sys_s']:.2f} s (user time without and with: {nf['user_s']:.2f} and {fw['user_s']:.2f} s).
{estimate}
`run_model.py` on the image, as the script runs (`main()` in a fresh process: checkpoint loading with
`mmap=True` onto a meta-device model, decoding and resizing, the network, results.json; imports not counted):
{cli_rows}.

Folder run, `run_model.main -input_dir` over the first {n_img} COCO-mini photos (640 px, scaled to 720), `-precision auto`,
**2 torch threads, wall seconds** (checkpoint loading included in both): with the read-ahead/write-behind pool
{rate['folder']:.3f} images/s against {rate['inline']:.3f} with the pool replaced by inline calls (the one-image-at-a-time
path), best of {args.repeats}; all runs: {fold_runs}.
Wall time depends on the other work on this shared 2-core machine (the load average is the 1-minute one at
the end of each run).

Start-up, `python densecap/SCRIPT -h`, user+sys CPU s of a fresh process, best of 3 (target < 0.8 CPU s):
{", ".join(f"{s} {t:.2f}" for s, t in startup.items())}.
<!-- /densecap:{kind} -->"""
    blocks = old_blocks()
    blocks[kind] = block
    body = f"""## densecap: one 720-px image on CPU (VGG-16 FCLN)

One block per kind of machine: a run rewrites only the block of the kind it runs on (AVX512-BF16, where
`-precision auto` is bf16, or AVX2-only, where it is fp32), so each block has its own git revision.
Ours: `densecap.model.forward_test` (bf16 trunk and fc6/fc7 where the CPU runs bf16 natively, batched RoI
features through roi_align, an NMS that stops at -num_proposals, captions for the kept boxes only, finished
captions dropped from the batch). Baseline: the same trunk and RPN, then a plain per-region loop (bilinear
sampler, fc6/fc7, heads, greedy caption one region at a time, captions for every proposal before the final
NMS, as the Lua code did). Random weights (the released model cannot be fetched here; the work per image does
not depend on them beyond how many boxes survive NMS and how long the captions are).

Why ours is about 2x the trunk and not 1.5x: fc6 maps each of the 1000 proposals' 7x7x512 RoI features
to 4096 values, 1000 x 25088 x 4096 multiply-adds, as many as the whole VGG-16 trunk at 720x480 (~105 G);
every proposal needs it (the final NMS ranks all of them by the score fc6/fc7 feed), and both run near
the core's peak, so the region path cannot cost less than about one trunk at 1000 proposals without
changing the model's outputs.

{chr(10).join(blocks[k] for k in ("bf16", "avx2") if k in blocks)}

Before issue 21 (git 75fc7e6, the 2-core AVX512-BF16 machine, fp32, best of 1): 7.42 CPU s at 1000
proposals and 4.86 at 300, trunk alone 2.62; `run_model.py -h` 0.10 CPU s.
For scale: the original Lua/Torch code took about 22 minutes for this image on CPU (jcjohnson/densecap#65).
"""
    write_section("densecap", body)
    print(body)
    if not args.skip_live:
        import live_bench  # the webcam pages' model path (densecap's and neuraltalk's), its own BENCHMARKS section
        live_bench.main([])


if __name__ == "__main__":
    main()
