"""neuraltalk benchmark on ../shared/data/flickr8k_1k: show-tell and top-down attention trained for a fixed
CPU budget each, scored on the test split with beam 1 and 3 next to two baselines computed in the same run.

    python bench/neuraltalk_bench.py [--minutes 15] [--cnn resnet18] [--cache bench/out/neuraltalk]
    python bench/neuraltalk_bench.py --models topdown   # re-run one model's rows: printed, BENCHMARKS.md untouched

Steps (each cached under --cache, so an interrupted run picks up where it stopped):
  1. prepro.py on all 1,000 images (features from a *randomly initialised* CNN: no pretrained weights can
     be downloaded here), and on the first 100 to compare peak RSS (streaming: within 1.5x);
  2. train.py for each model, run side by side, each stopped by -max_cpu_time (its own process CPU seconds,
     one torch thread), best checkpoint by validation loss;
  3. test-split metrics (pycocoevalcap: BLEU-4, METEOR, ROUGE-L, CIDEr-D) for beam 1 and 3, and for the
     baselines: the caption of the nearest training image by fc feature (cosine, standardised), and the
     single most common training caption; eval speed in images per CPU second.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import ROOT, git_rev, machine, write_section  # noqa: E402

DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "flickr8k_1k"))
PY = sys.executable
# the attention model runs ~5x fewer iterations per CPU second (a Python loop over LSTMCells + attention):
# a higher learning rate lets it converge within the same budget
MODELS = {"show_tell": [], "topdown": ["-att_hid_size", "256", "-learning_rate", "1e-3"]}
COMMON = ["-rnn_size", "256", "-input_encoding_size", "256", "-batch_size", "16", "-seq_per_img", "5",
          "-learning_rate", "4e-4", "-drop_prob_lm", "0.5", "-save_checkpoint_every", "200",
          "-val_images_use", "-1", "-gpuid", "-1", "-threads", "1", "-losses_log_every", "25"]


def sh(cmd, log):
    """Run a command, its output to `log`; -> (child CPU seconds, peak RSS MiB of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu, after.ru_maxrss / 1024


def prepro_step(cache, cnn):
    """Features for all 1,000 images and for the first 100 (peak RSS of each, measured in fresh processes)."""
    out = os.path.join(cache, "prepro.json")
    if os.path.exists(out):
        return json.load(open(out))
    src = json.load(open(os.path.join(DATA, "dataset_flickr8k.json")))
    tenth = dict(src, images=src["images"][:100])
    json.dump(tenth, open(os.path.join(cache, "tenth.json"), "w"))
    res = {}
    for name, inp in (("tenth", os.path.join(cache, "tenth.json")),
                      ("full", os.path.join(DATA, "dataset_flickr8k.json"))):
        # a fresh process each, so each ru_maxrss is its own peak (RUSAGE_CHILDREN keeps the max)
        cmd = [PY, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print('RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)",
               PY, os.path.join(ROOT, "neuraltalk", "prepro.py"), "-input_json", inp, "-images_root", DATA,
               "-output_json", os.path.join(cache, f"{name}.talk.json"), "-output_h5",
               os.path.join(cache, f"{name}.talk.h5"), "-cnn", cnn, "-gpuid", "-1", "-batch_size", "16"]
        log = os.path.join(cache, f"prepro_{name}.log")
        cpu, _ = sh(cmd, log)
        rss = int(next(line.split()[1] for line in open(log) if line.startswith("RSS "))) / 1024
        res[name] = {"cpu_s": cpu, "rss_mib": rss}
        print(f"prepro {name}: {cpu:.0f} CPU s, peak RSS {rss:.0f} MiB", flush=True)
    json.dump(res, open(out, "w"))
    return res


def train_step(cache, minutes):
    """Both models side by side, each for `minutes` of its own CPU time."""
    procs = {}
    for name, extra in MODELS.items():
        done = os.path.join(cache, f"{name}.done")
        if os.path.exists(done):
            continue
        cmd = [PY, os.path.join(ROOT, "neuraltalk", "train.py"), "-input_json", os.path.join(cache, "full.talk.json"),
               "-input_h5", os.path.join(cache, "full.talk.h5"), "-caption_model", name, *COMMON, *extra,
               "-max_cpu_time", str(minutes * 60), "-checkpoint_path", os.path.join(cache, "cv"), "-id", name]
        log = open(os.path.join(cache, f"train_{name}.log"), "w")
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                        env=dict(os.environ, OMP_NUM_THREADS="1")), log)
        print(f"training {name} for {minutes} CPU minutes ...", flush=True)
    for name, (p, log) in procs.items():
        if p.wait() != 0:
            sys.exit(f"training {name} failed; see {log.name}")
        open(os.path.join(cache, f"{name}.done"), "w").write("ok")


def baselines(data, test_ix, train_ix, fc_stats):
    """Nearest training image by standardised fc feature (cosine) -> its first caption; most common caption."""
    mean, std = fc_stats
    fc = lambda ixs: (torch.from_numpy(data.read("fc", ixs)).float() - mean) / std  # noqa: E731
    tr, te = torch.nn.functional.normalize(fc(train_ix), dim=1), torch.nn.functional.normalize(fc(test_ix), dim=1)
    nearest = (te @ tr.T).argmax(1).numpy()
    nn_caps = {data.images[k]["id"]: data.refs(int(train_ix[j]))[0] for k, j in zip(test_ix, nearest)}
    counts = Counter(" ".join(c.lower().replace(".", " ").split()) for k in train_ix for c in data.refs(int(k)))
    common, n = counts.most_common(1)[0]
    return nn_caps, {data.images[k]["id"]: common for k in test_ix}, (common, n)


def evaluate_step(cache):
    out = os.path.join(cache, "scores.json")
    if os.path.exists(out):
        return json.load(open(out))
    from common import lang_eval
    from neuraltalk import engine
    from neuraltalk.captioner import build_captioner, caption_folder, load_checkpoint
    from neuraltalk.data import CaptionData

    torch.set_num_threads(1)
    data = CaptionData(os.path.join(cache, "full.talk.json"), os.path.join(cache, "full.talk.h5"))
    test_ix, train_ix = data.split_ix["test"], data.split_ix["train"]
    refs = {data.images[k]["id"]: data.refs(k) for k in test_ix}
    res = {"models": {}}
    folder = os.path.join(cache, "test_images")
    if not os.path.isdir(folder):  # the test images as "your own folder" for the end-to-end speed
        os.makedirs(folder)
        for k in test_ix:
            os.symlink(os.path.join(DATA, data.images[k]["file_path"]), os.path.join(folder, os.path.basename(
                data.images[k]["file_path"])))
    for name in MODELS:
        ck = load_checkpoint(os.path.join(cache, "cv", f"model_id{name}-best.pt"))
        model = build_captioner(ck)
        hist = ck["history"]
        entry = {"iterations": hist["iter"], "epochs": round(hist["iter"] / -(-len(train_ix) // 16), 1),
                 "best_val_loss": min(hist["val_loss_history"].values())}
        for beam in (1, 3):
            c0 = time.process_time()
            _, preds, _ = engine.evaluate(model, data, "test", "cpu", -1, 25, beam_size=beam)
            dec_s = time.process_time() - c0
            c0 = time.process_time()
            n_e2e = len(caption_folder(model, ck["ix_to_word"], folder, ck["cnn_info"], "cpu", 50, 25, beam_size=beam))
            e2e_s = time.process_time() - c0
            stats = lang_eval.score(refs, {p["image_id"]: p["caption"] for p in preds})
            entry[f"beam{beam}"] = {**stats, "decode_img_per_cpu_s": len(preds) / dec_s,
                                    "end_to_end_img_per_cpu_s": n_e2e / e2e_s,
                                    "examples": [p["caption"] for p in preds[:4]]}
            print(name, beam, {k: round(v, 3) for k, v in stats.items()}, flush=True)
        res["models"][name] = entry
        fc_stats = (ck["feat_stats"]["fc_mean"], ck["feat_stats"]["fc_std"])
    nn_caps, common_caps, (common, n) = baselines(data, test_ix, train_ix, fc_stats)
    res["nearest"] = lang_eval.score(refs, nn_caps)
    res["common"] = lang_eval.score(refs, common_caps)
    res["common_caption"] = [common, n]
    res["refs_examples"] = [refs[data.images[k]["id"]][0] for k in test_ix[:4]]
    json.dump(res, open(out, "w"), indent=1)
    return res


def partial_report(res, models):
    """One model's rows (and the same-run baselines) printed, for a hand update of BENCHMARKS.md: the section
    needs both models."""
    m = res["models"]
    for name in models:
        print(f"- {name}: best checkpoint (lowest validation loss, {m[name]['best_val_loss']:.3f}) at iteration "
              f"{m[name]['iterations']} ({m[name]['epochs']} epochs)")
        for beam in (1, 3):
            s = m[name][f"beam{beam}"]
            print(f"| {name}, beam {beam} | {s['Bleu_4']:.3f} | {s['METEOR']:.3f} | {s['ROUGE_L']:.3f} | "
                  f"**{s['CIDEr']:.3f}** |")
        print(f"| {name} | {m[name]['beam1']['decode_img_per_cpu_s']:.1f} | {m[name]['beam3']['decode_img_per_cpu_s']:.1f} | "
              f"{m[name]['beam1']['end_to_end_img_per_cpu_s']:.2f} | {m[name]['beam3']['end_to_end_img_per_cpu_s']:.2f} |")
        print("examples (beam 3):", m[name]["beam3"]["examples"])
    for key in ("nearest", "common"):
        s = res[key]
        print(f"| baseline {key} | {s['Bleu_4']:.3f} | {s['METEOR']:.3f} | {s['ROUGE_L']:.3f} | {s['CIDEr']:.3f} |")
    print("common caption:", res["common_caption"], "refs:", res["refs_examples"])


def report(res, pre, args, wall):
    m = res["models"]
    rows = []
    for name in MODELS:
        for beam in (1, 3):
            s = m[name][f"beam{beam}"]
            rows.append(f"| {name}, beam {beam} | {s['Bleu_4']:.3f} | {s['METEOR']:.3f} | {s['ROUGE_L']:.3f} | "
                        f"**{s['CIDEr']:.3f}** |")
    for key, label in (("nearest", "baseline: caption of the nearest training image (fc cosine)"),
                       ("common", f"baseline: most common training caption (\"{res['common_caption'][0]}\", "
                                  f"{res['common_caption'][1]}x)")):
        s = res[key]
        rows.append(f"| {label} | {s['Bleu_4']:.3f} | {s['METEOR']:.3f} | {s['ROUGE_L']:.3f} | {s['CIDEr']:.3f} |")
    beat = all(m[n][f"beam{b}"]["CIDEr"] > max(res["nearest"]["CIDEr"], res["common"]["CIDEr"])
               for n in MODELS for b in (1, 3))
    speed = [f"| {n} | {m[n]['beam1']['decode_img_per_cpu_s']:.1f} | {m[n]['beam3']['decode_img_per_cpu_s']:.1f} | "
             f"{m[n]['beam1']['end_to_end_img_per_cpu_s']:.2f} | {m[n]['beam3']['end_to_end_img_per_cpu_s']:.2f} |"
             for n in MODELS]
    runs = [f"- {n}: best checkpoint (lowest validation loss, {m[n]['best_val_loss']:.3f}) at iteration "
            f"{m[n]['iterations']} ({m[n]['epochs']} epochs) of its {args.minutes:g} CPU minutes" for n in MODELS]
    ratio = pre["full"]["rss_mib"] / pre["tenth"]["rss_mib"]
    ex = "\n".join(f"  - reference: \"{r}\"; show_tell: \"{a}\"; topdown: \"{b}\"" for r, a, b in zip(
        res["refs_examples"], m["show_tell"]["beam3"]["examples"], m["topdown"]["beam3"]["examples"]))
    best_base = max(res["nearest"]["CIDEr"], res["common"]["CIDEr"])
    margins = "; ".join(f"{n}: CIDEr-D {m[n]['beam1']['CIDEr'] / best_base:.1f}x / {m[n]['beam3']['CIDEr'] / best_base:.1f}x "
                        "the better baseline at beam 1 / 3" for n in MODELS)
    budget_note = ("" if args.minutes >= 15 else f"**Budget: {args.minutes:g} CPU minutes per model, not the 15 asked.**")
    body = f"""## neuraltalk (image captioning, flickr8k_1k)

Machine: {machine()}. Commit {git_rev()}. Command: `python bench/neuraltalk_bench.py --minutes {args.minutes:g} --cnn {args.cnn}`
(steps cached under `bench/out/neuraltalk/`). {budget_note}

Features: **{args.cnn} with random weights** (no pretrained weights can be downloaded here; seed 123), `fc` =
layer4 mean (512-d) and `att` = layer4 pooled to 7x7, on 256x256 squashes, centre 224 crop; standardised per
dimension with training-set statistics. Training: 762 train / 113 val images (Karpathy split of the json),
rnn_size 256, batch 16 images x 5 captions, Adam (4e-4 for show_tell, 1e-3 for topdown), dropout 0.5, each model stopped after
{args.minutes:g} minutes of **its own process CPU time** (`time.process_time()`, one torch thread, each
model in its own process), best checkpoint by validation loss. Metrics: pycocoevalcap (PTB tokenizer, METEOR
jar, CIDEr-D) on the 125 test images; baselines computed in the same run on the same images.

{chr(10).join(runs)}

| test split (125 images) | BLEU-4 | METEOR | ROUGE-L | CIDEr-D |
|---|---|---|---|---|
{chr(10).join(rows)}

Both models beat both baselines on CIDEr (beam 1 and 3): **{'yes' if beat else 'NO'}**. Absolute numbers are
far below published Flickr8k results (which use ImageNet-pretrained CNNs and ~6,000 training images);
what this run checks is that the captioners learn something from random-CNN features of 762 images.
{margins}. topdown runs ~5x fewer iterations per CPU second than show_tell (a Python loop over LSTMCells
and attention).

Examples (first test images, beam 3; decoded without `-suppress_UNK`, so UNK can appear):
{ex}

Eval speed, images per CPU second (one thread): decoding from stored features, and end to end from the
image files (decode, resize, random-weight {args.cnn} at 224, caption; first 50 test images):

| model | decode beam 1 | decode beam 3 | end-to-end beam 1 | end-to-end beam 3 |
|---|---|---|---|---|
{chr(10).join(speed)}

Prepro peak RSS (streaming, images in batches of 16): all 1,000 images {pre['full']['rss_mib']:.0f} MiB vs
the first 100 {pre['tenth']['rss_mib']:.0f} MiB: **{ratio:.2f}x** (target within 1.5x); CPU time
{pre['full']['cpu_s']:.0f} s vs {pre['tenth']['cpu_s']:.0f} s.
"""
    write_section("neuraltalk", body)
    print(body)


# --inference: eval.py -image_folder end to end in fresh processes (ours, and the code at --baseline_root)
INFER_WORKER = r'''
import json, os, sys, time
import torch
torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
from common.cli import parse
from neuraltalk import eval as nt_eval
import neuraltalk.captioner, neuraltalk.engine, neuraltalk.data  # noqa: E401,F401 (imports not timed, as before)
args = json.loads(sys.argv[1])
t0, w0 = time.process_time(), time.perf_counter()
preds, _ = nt_eval.main(parse(nt_eval.EvalOptions, args))
print(json.dumps({"cpu_s": time.process_time() - t0, "wall_s": time.perf_counter() - w0, "n": len(preds),
                  "captions": [p["caption"] for p in preds], "load_avg": os.getloadavg()[0]}))
'''
SAVE_RANDOM = r'''
import sys, torch
from common import checkpoint
from neuraltalk.cnn import build_cnn
from neuraltalk.model import CaptionConfig, build_model
cnn = build_cnn("resnet18", "", 7, 123)
cfg = CaptionConfig(caption_model="show_tell", vocab_size=2000, fc_dim=512, input_encoding_size=256, rnn_size=256,
                    seq_length=16)
torch.manual_seed(1)
checkpoint.save(sys.argv[1], "neuraltalk", {
    "model": build_model(cfg).state_dict(), "cnn": cnn.state_dict(), "cnn_preprocess": "torchvision",
    "cnn_info": {"cnn": "resnet18", "cnn_weights": "", "att_size": 7, "seed": 123, "image_size": 256, "crop_size": 224},
    "config": cfg.to_dict(), "opt": {}, "ix_to_word": {str(i): f"w{i}" for i in range(1, 2001)}, "seq_length": 16})
'''


def infer_worker(root, args, threads=1):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), BENCH_THREADS=str(threads), PYTHONPATH=root)
    out = subprocess.run([PY, "-c", INFER_WORKER, json.dumps(args)], cwd=root, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"eval.py {args} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def startup_cpu_s(script):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([PY, script, "-h"], cwd=ROOT, capture_output=True, check=True, env=dict(os.environ, PYTHONPATH=ROOT))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def inference_bench(args):
    """eval.py -image_folder on 50 Flickr8k photos, a random-weight show_tell + ResNet-18 (224 crops of 256
    squashes, rnn 256, 2,000 words), greedy, batches of 25, vis.json and vis/imgs written: CPU s of the
    process with one thread (ours fp32 / bf16 and the baseline code), wall s with two threads."""
    from common.device import native_bf16
    out = os.path.join(ROOT, "bench", "out", "neuraltalk_inference")
    imgs = os.path.join(out, "imgs")
    os.makedirs(imgs, exist_ok=True)
    for f in sorted(os.listdir(os.path.join(DATA, "images")))[:50]:
        if not os.path.exists(os.path.join(imgs, f)):
            os.symlink(os.path.join(DATA, "images", f), os.path.join(imgs, f))
    ck = os.path.join(out, "random_show_tell_resnet18.pt")
    if not os.path.exists(ck):
        subprocess.run([PY, "-c", SAVE_RANDOM, ck], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), check=True,
                       capture_output=True)
    base = ["-model", ck, "-image_folder", imgs, "-num_images", "50", "-batch_size", "25", "-beam_size", "1",
            "-gpuid", "-1", "-vis_dir", os.path.join(out, "vis")]
    configs = {"ours fp32": (ROOT, base + ["-precision", "fp32"]),
               "baseline (fp32)": (args.baseline_root, base)}
    if native_bf16():
        configs["ours bf16"] = (ROOT, base + ["-precision", "bf16"])
    runs = {}
    for rep in range(args.repeats):
        for name, (root, a) in configs.items():
            for threads in (1, 2):
                r = infer_worker(root, a, threads)
                print(f"{name}, {threads} thread(s): {r['n'] / r['cpu_s']:.1f} images/CPU s, "
                      f"{r['n'] / r['wall_s']:.1f} images/wall s (load {r['load_avg']:.1f})", flush=True)
                runs.setdefault((name, threads), []).append(r)
    cpu = {k: max(r["n"] / r["cpu_s"] for r in v) for k, v in runs.items()}
    wall = {k: max(r["n"] / r["wall_s"] for r in v) for k, v in runs.items()}
    same = ""
    if native_bf16():
        a, b = runs[("ours fp32", 1)][0]["captions"], runs[("ours bf16", 1)][0]["captions"]
        same = (f"bf16 against fp32 on these 50 photos: {sum(x == y for x, y in zip(a, b))} of {len(a)} greedy "
                f"captions the same. This checkpoint's CNN is random (as every neuraltalk model trainable here), "
                f"whose standardised features are mostly a few-percent variation that bf16 rounding can swamp "
                f"(here it changed 1 caption; on the shapes model of neuraltalk/tests it changed several): "
                f"that is why `-precision auto` keeps fp32 for such checkpoints; on the Lua-written neuraltalk2 "
                f"model (a trained CNN) bf16 gives neuraltalk2's own captions (test_lua_checkpoints.py).")
    startup = {s: min(startup_cpu_s(f"neuraltalk/{s}") for _ in range(3)) for s in ("eval.py", "webcam.py", "convert.py")}
    rows = [f"| {name} | {cpu[(name, 1)]:.1f} | {cpu[(name, 1)] / cpu[('baseline (fp32)', 1)]:.2f}x | "
            f"{wall[(name, 1)]:.1f} | {wall[(name, 2)]:.1f} |" for name in configs]
    def fmt(r):
        return f"{r['n'] / r['cpu_s']:.1f}/{r['n'] / r['wall_s']:.1f} (load {r['load_avg']:.1f})"
    allruns = "; ".join(f"{k[0]} {k[1]}t: [{', '.join(fmt(r) for r in v)}]" for k, v in runs.items())
    body = f"""## neuraltalk inference: eval.py -image_folder end to end

`python bench/neuraltalk_bench.py --inference --repeats {args.repeats}` on {machine()}; git {git_rev()}.
`eval.py -image_folder` (`main()` in a fresh process, imports not counted: checkpoint loading, decoding and squashing each
photo, ResNet-18 at 224, greedy captions, vis.json and vis/imgs written) on the first 50 Flickr8k photos
(~500x375 JPEG), `-batch_size 25 -beam_size 1`, a random-weight show_tell (rnn 256, 2,000 words) over a
random ResNet-18; images per **CPU second** of the process with one torch thread (robust to other load),
and per wall second with 1 and 2 threads (not robust: other helpers' jobs ran; the load average is listed).
Baseline: the same command run with the code at `{os.path.relpath(args.baseline_root, ROOT)}` (git
{git_rev_of(args.baseline_root)}: one image decoded after another, every vis image decoded and re-encoded).
Best of {args.repeats}.

| code | images / CPU s (1 thread) | vs baseline | images / wall s, 1 thread | images / wall s, 2 threads |
|---|---:|---:|---:|---:|
{chr(10).join(rows)}

All runs (images per CPU s / per wall s): {allruns}.

{same}

Start-up, `python neuraltalk/SCRIPT -h`, user+sys CPU s of a fresh process, best of 3:
{", ".join(f"{s} {t:.2f}" for s, t in startup.items())} (before: eval.py 5.3, webcam.py 5.7, convert.py 2.7, one
run each on this machine).

The 8.72 images per CPU second in the section above is the AVX2 machine's figure (batch 25, caption_folder
alone, a trained show_tell).
"""
    write_section("neuraltalk-inference", body)
    print(body)


def git_rev_of(root):
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15, help="CPU minutes of training per model")
    ap.add_argument("--cnn", default="resnet18", help="CNN for the features (random weights)")
    ap.add_argument("--cache", default=os.path.join(ROOT, "bench", "out", "neuraltalk"))
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    ap.add_argument("--inference", action="store_true", help="only the eval.py -image_folder speed (a few minutes)")
    ap.add_argument("--baseline_root", default=ROOT, help="a checkout whose eval.py is the --inference baseline")
    ap.add_argument("--repeats", type=int, default=3, help="--inference rounds")
    args = ap.parse_args()
    if args.inference:
        return inference_bench(args)
    chosen = args.models.split(",")
    if not chosen or any(n not in MODELS for n in chosen):
        sys.exit(f"--models: choose from {', '.join(MODELS)}")
    for name in [n for n in MODELS if n not in chosen]:
        del MODELS[name]
    os.makedirs(args.cache, exist_ok=True)
    t0 = time.time()
    pre = prepro_step(args.cache, args.cnn)
    train_step(args.cache, args.minutes)
    res = evaluate_step(args.cache)
    if len(chosen) < 2:
        partial_report(res, chosen)
    else:
        report(res, pre, args, time.time() - t0)


if __name__ == "__main__":
    main()
