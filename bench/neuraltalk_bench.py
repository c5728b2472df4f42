"""neuraltalk benchmark on ../shared/data/flickr8k_1k: show-tell and top-down attention trained for a fixed
CPU budget each, scored on the test split with beam 1 and 3 next to two baselines computed in the same run.

    python bench/neuraltalk_bench.py [--minutes 15] [--cnn resnet18] [--cache bench/out/neuraltalk]

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15, help="CPU minutes of training per model")
    ap.add_argument("--cnn", default="resnet18", help="CNN for the features (random weights)")
    ap.add_argument("--cache", default=os.path.join(ROOT, "bench", "out", "neuraltalk"))
    args = ap.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    t0 = time.time()
    pre = prepro_step(args.cache, args.cnn)
    train_step(args.cache, args.minutes)
    res = evaluate_step(args.cache)
    report(res, pre, args, time.time() - t0)


if __name__ == "__main__":
    main()
