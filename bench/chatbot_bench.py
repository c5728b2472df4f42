"""chatbot benchmark: attention vs plain seq2seq on dgk_lost_conv, and memory on all of it vs a tenth.

    python bench/chatbot_bench.py                 # the full run (`make bench`): 10 min per model
    python bench/chatbot_bench.py --minutes 1 --rss-steps 20 --no-write   # a quick check

1. Quality: the Luong-attention model and the plain encoder-decoder (the original's), same sizes and
   settings, are trained for the same wall-clock time at the same time, one CPU thread each (so they
   share the machine equally and the whole run takes half as long). Each is then scored on the held-out
   dialogs: per-token perplexity (words or characters, --tokens), BLEU-2 and distinct-1/2 of greedy replies.
2. Memory: peak RSS (ru_maxrss of each child process, from wait4) of preprocessing and of training
   (a few hundred batches) on all of dgk_lost_conv vs on its first tenth of dialogs.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.report import git_rev, machine, write_section  # noqa: E402

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "dgk_lost_conv")
DIALOGS = 47378  # data/README.md; --dataset N keeps the first N dialogs
MODEL = ["--hiddenSize", "256", "--numLayers", "1", "--batchSize", "64", "--dropout", "0.1", "--learningRate", "0.002",
         "--optim", "adam", "--threads", "1", "--seed", "123"]
VOCAB = {"word": "8000", "char": "4000"}


def start(args, log):
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    p.log = log
    return p


def finish(p):
    """Wait for a child; returns its peak RSS in MiB (this child only, unlike RUSAGE_CHILDREN)."""
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(p.args)}; see {p.log}")
    return usage.ru_maxrss / 1024


def question_overlap(h5_path):
    """Share of validation reply tokens (not <unknown>) that occur in their own question, and in the
    question of the pair half a batch away (as eval.py's mismatched perplexity pairs them)."""
    from chatbot.corpus import UNK, PairData
    data = PairData(h5_path, "val")
    hits, hits_mm, total = 0, 0, 0
    for src, tgt in data.batches(64, shuffle=False):
        half = len(src) // 2
        for s, s_mm, t in zip(src, src[half:] + src[:half], tgt):
            t = t[t != UNK]
            hits, hits_mm, total = hits + int(np.isin(t, s).sum()), hits_mm + int(np.isin(t, s_mm).sum()), total + len(t)
    data.close()
    return hits / total, hits_mm / total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training time per model (default 10)")
    ap.add_argument("--rss-steps", type=int, default=300, help="training batches for the memory runs")
    ap.add_argument("--score-pairs", type=int, default=1000, help="validation pairs given greedy replies")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "chatbot"), help="work folder")
    ap.add_argument("--tokens", default="char", choices=["word", "char"],
                    help="characters (default, as chatbot-zh's char-split corpora) or jieba words")
    ap.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    a = ap.parse_args()
    MODEL[:0] = ["--tokens", a.tokens, "--vocabSize", VOCAB[a.tokens]]
    os.makedirs(a.out, exist_ok=True)
    tenth = DIALOGS // 10
    data = {"full": os.path.join(a.out, "full"), "tenth": os.path.join(a.out, "tenth")}
    for d in data.values():
        shutil.rmtree(d, ignore_errors=True)
    t_start = time.time()

    # --- memory: preprocessing, then a few hundred training batches, each in its own process
    rss = {}
    for name, n in (("tenth", tenth), ("full", 0)):
        prep = ["-m", "chatbot.corpus", "--corpus", CORPUS, "--dataDir", data[name], "--dataset", str(n),
                "--tokens", a.tokens, "--vocabSize", VOCAB[a.tokens]]
        t = time.time()
        rss[name, "prep"] = finish(start(prep, os.path.join(a.out, f"prep_{name}.log")))
        rss[name, "prep_s"] = time.time() - t
        train = ["-m", "chatbot.train", "--corpus", CORPUS, "--dataDir", data[name], "--dataset", str(n), *MODEL,
                 "--maxSteps", str(a.rss_steps), "--printEvery", "100"]
        rss[name, "train"] = finish(start(train, os.path.join(a.out, f"rss_train_{name}.log")))
        print(f"{name}: preprocessing {rss[name, 'prep']:.0f} MiB, training {rss[name, 'train']:.0f} MiB", flush=True)
    prep_log = open(os.path.join(a.out, "prep_full.log"), encoding="utf-8").read()
    stats = re.search(r"(\d+) dialogs, (\d+) training pairs, (\d+) validation pairs, vocabulary (\d+)", prep_log)

    # --- quality: attention vs plain, trained side by side for the same time, one thread each
    runs = {}
    for att in ("general", "none"):
        d = os.path.join(a.out, f"model_{att}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        shutil.copy(os.path.join(data["full"], "corpus.h5"), d)  # same preprocessed data, own model files
        shutil.copy(os.path.join(data["full"], "vocab.json"), d)
        args = ["-m", "chatbot.train", "--corpus", CORPUS, "--dataDir", d, *MODEL, "--attention", att,
                "--maxTime", str(60 * a.minutes), "--maxEpoch", "100", "--patience", "0", "--printEvery", "200"]
        runs[att] = (d, start(args, os.path.join(a.out, f"train_{att}.log")))
    for att, (d, p) in runs.items():
        finish(p)
    scores = {}
    procs = {att: start(["-m", "chatbot.eval", "--dataDir", d, "--metrics", str(a.score_pairs), "--threads", "1"],
                        os.path.join(a.out, f"eval_{att}.log")) for att, (d, _) in runs.items()}
    for att, p in procs.items():
        finish(p)
        log = open(p.log, encoding="utf-8").read()
        m = re.search(r"validation: (\d+) pairs, perplexity ([\d.]+) per (\w+); greedy replies to (\d+): "
                      r"BLEU-2 ([\d.]+), distinct-1 ([\d.]+), distinct-2 ([\d.]+)", log)
        mm = re.search(r"after another dialog's question: perplexity ([\d.]+)", log)
        tlog = open(os.path.join(a.out, f"train_{att}.log"), encoding="utf-8").read()
        params = re.search(r"([\d.]+)M parameters", tlog).group(1)
        stop = re.search(r"stopped at epoch (\d+) batch (\d+)", tlog)
        n_batches = int(re.search(r"\((\d+) batches of", tlog).group(1))
        steps = (int(stop.group(1)) - 1) * n_batches + int(stop.group(2)) if stop else None
        scores[att] = dict(pairs=int(m.group(1)), ppl=float(m.group(2)), unit=m.group(3), scored=int(m.group(4)),
                           bleu2=float(m.group(5)), d1=float(m.group(6)), d2=float(m.group(7)), params=params,
                           steps=steps, ppl_mm=float(mm.group(1)))
        print(att, scores[att], flush=True)

    # --- the section
    att, plain = scores["general"], scores["none"]
    gain = 1 - att["ppl"] / plain["ppl"]
    r_prep = rss["full", "prep"] / rss["tenth", "prep"]
    r_train = rss["full", "train"] / rss["tenth", "train"]
    cmd = "python bench/chatbot_bench.py" + ("" if a.minutes == 10 and a.rss_steps == 300 else
                                              f" --minutes {a.minutes:g} --rss-steps {a.rss_steps}")
    cmd += "" if a.tokens == "char" else f" --tokens {a.tokens}"
    share, share_mm = question_overlap(os.path.join(data["full"], "corpus.h5"))
    used = max(1 - r["ppl"] / r["ppl_mm"] for r in scores.values())
    settings = " ".join(MODEL)
    unit = att["unit"]
    tok_text = "jieba **word** tokens" if a.tokens == "word" else "**character** tokens (`--tokens char`)"
    unit_text = "jieba token" if a.tokens == "word" else "character"

    def row(label, r, bold=False):
        ppl = f"**{r['ppl']:.2f}**" if bold else f"{r['ppl']:.2f}"
        return (f"| {label} | {r['params']}M | {r['steps']} | {ppl} | {r['ppl_mm']:.2f} "
                f"({100 * (1 - r['ppl'] / r['ppl_mm']):.1f}%) | {r['bleu2']:.2f} | {r['d1']:.3f} | {r['d2']:.3f} |")

    def rss_row(label, key, ratio):
        cells = [f"{rss[n, key]:.0f} MiB" + (f" ({rss[n, 'prep_s']:.0f} s)" if key == "prep" else "")
                 for n in ("tenth", "full")]
        return f"| {label} | {cells[0]} | {cells[1]} | {ratio:.2f}x |"
    mm_head = "same, questions mismatched (question's effect)"
    body = f"""## chatbot (seq2seq on dgk_lost_conv)

Machine: {machine()}. Commit {git_rev()}. Command: `{cmd}` (run by `make bench`), {(time.time() - t_start) / 60:.0f} min.

Corpus: `../shared/data/dgk_lost_conv` (5 files), {stats.group(1)} dialogs -> {stats.group(2)} training pairs and
{stats.group(3)} validation pairs (consecutive turns; 5% of dialogs held out), {tok_text},
vocabulary {stats.group(4)} (`--vocabSize {VOCAB[a.tokens]}` + 4 specials). Model settings for both: `{settings}`.

### Attention vs plain seq2seq, {a.minutes:g} minutes of CPU training each

Both models trained at the same time, one CPU thread each (`--threads 1`), so each got the same share
of the {os.cpu_count()}-core machine for the same wall-clock time (`--maxTime {60 * a.minutes:g}`). Perplexity is per
{unit} ({unit_text}, plus `<eos>`) over all {att['pairs']} validation pairs; BLEU-2 (corpus, x100) and distinct-1/2 are
of greedy replies to the first {att['scored']} validation questions.

| model | parameters | batches in {a.minutes:g} min | val perplexity (per {unit}) | {mm_head} | BLEU-2 | distinct-1 | distinct-2 |
| --- | --- | --- | --- | --- | --- | --- | --- |
{row('Luong attention (`--attention general`, default)', att, bold=True)}
{row('plain encoder-decoder (`--attention none`, the original)', plain)}

Attention's validation perplexity is **{abs(100 * gain):.1f}% {"lower" if gain >= 0 else "higher"}** than the plain model's
(target: at least 20% lower) -> **{"met" if gain >= 0.2 else "NOT met"}**.

How much the question matters: the "questions mismatched" column scores every validation reply after
the question of a pair half a batch away (another dialog, almost always) instead of its own. The gap
is what a model draws from the question, which is what attention is there to improve: apart from it,
both decoders are the same language model. Here it is at most {100 * used:.1f}%, so a 20% lead could not
come from reading the question better. The corpus says why: {100 * share:.1f}% of the validation replies' {unit}s
occur in their own question, against {100 * share_mm:.1f}% in a mismatched one. Consecutive subtitle lines
rarely echo each other, so most of what a reply holds cannot be read off the question.

### Peak memory: all of dgk_lost_conv vs a tenth

Peak RSS of each step in its own process (`ru_maxrss` from `wait4`). Training reads batches from
`corpus.h5` block by block, so only the model, the optimizer and one block of pairs are in memory.

| step | first tenth (`--dataset {tenth}`) | all ({stats.group(1)} dialogs) | ratio |
| --- | --- | --- | --- |
{rss_row('preprocessing (`python -m chatbot.corpus`)', 'prep', r_prep)}
{rss_row(f'training, {a.rss_steps} batches + validation', 'train', r_train)}

Target: training on all of it within 1.5x of a tenth -> **{"met" if max(r_prep, r_train) <= 1.5 else "NOT met"}**.
"""
    if a.no_write:
        print(body)
    else:
        write_section("chatbot", body)
        print("wrote the chatbot section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
