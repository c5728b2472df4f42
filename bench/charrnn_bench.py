"""charrnn benchmark on tinyshakespeare: speed, memory and the validation loss reached in 10 CPU minutes.

    python bench/charrnn_bench.py [--minutes 10] [--data ../shared/data/tinyshakespeare/input.txt]
    python bench/charrnn_bench.py --fast-path   # only the sampler's step loop (target > 3,000 chars/CPU s)

Training throughput is one step (forward, backward, clamp, RMSprop) on a 50x50 batch, in CPU seconds of one
thread, for our model (fused nn.LSTM) and for a per-timestep nn.LSTMCell loop (the naive port of the Lua
code), each in its own process so peak RSS is per configuration; the anchor is Lua char-rnn on this kind
of machine: 0.21 s/batch for the default model (11.9k chars/s). Sampling speed compares today's sample.py
(BASELINE_COMMIT) with ours on the same checkpoints, interleaved, per CPU second and best wall clock.
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

LUA_CHARS_PER_S = 50 * 50 / 0.21
LUA_VAL = "1.55 after 4.7 epochs (~7 min), ~1.47 after 10 min, 1.43 after 15 min"
RECOMMENDED = ["-rnn_size", "256", "-num_layers", "2", "-batch_size", "50", "-seq_length", "50",
               "-learning_rate", "2e-3", "-learning_rate_decay_after", "3", "-learning_rate_decay", "0.85",
               "-dropout", "0"]

WORKER = r'''
import json, resource, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
from charrnn.model import Config, LanguageModel
kind, H, L, steps, V, B, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), 65, 50, 50
torch.manual_seed(0)
torch.set_num_threads(1)  # timed in CPU seconds of this process: one thread, so CPU time is the step's time

class NaiveLoop(nn.Module):  # the literal port: one LSTMCell call per layer per timestep
    def __init__(self):
        super().__init__()
        self.cells = nn.ModuleList([nn.LSTMCell(V if l == 0 else H, H) for l in range(L)])
        self.decoder = nn.Linear(H, V)
    def forward(self, idx, state):
        state = state or [(torch.zeros(idx.size(0), H), torch.zeros(idx.size(0), H)) for _ in range(L)]
        outs = []
        for t in range(idx.size(1)):
            x = F.one_hot(idx[:, t], V).float()
            new = []
            for l, cell in enumerate(self.cells):
                h, c = cell(x, state[l]); new.append((h, c)); x = h
            state = new
            outs.append(self.decoder(x))
        return torch.stack(outs, 1), [(h.detach(), c.detach()) for h, c in state]

model = LanguageModel(Config(V, H, L)) if kind == "fused" else NaiveLoop()
opt = torch.optim.RMSprop(model.parameters(), lr=2e-3, alpha=0.95, eps=1e-8)
x, y, state = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T)), None
times = []
for i in range(steps + 2):
    t0 = time.process_time()
    logits, state = model(x, state)
    state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    opt.zero_grad(); (loss * T).backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), 5)
    opt.step()
    times.append(time.process_time() - t0)
dt = sorted(times[2:])[len(times[2:]) // 2]
out = {"s_per_batch": dt, "chars_per_s": B * T / dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print(json.dumps(out))
'''


BASELINE_COMMIT = "e46c5c6"  # the last commit with the nn.LSTM-per-character sample.py (issue 11's "today")
LUA_SAMPLE = 5200  # chars/s of Lua sample.lua for 2x128 on this kind of machine (issue 11)
SAMPLE_WORKER = r'''
import importlib.util, json, sys, tempfile, time
import torch
threads, old_path, repeats = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ckpts = json.loads(sys.argv[4])
torch.set_num_threads(threads)
from charrnn import sample as new
from charrnn.sampler import LSTMStep, load_model
from common.cli import parse
spec = importlib.util.spec_from_file_location("old_sample", old_path)
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
from charrnn.model import Config, LanguageModel  # the old script built the model from positional sizes
old.LanguageModel = lambda V, H, L, kind, dropout, wordvec: LanguageModel(Config(V, H, L, kind, dropout, wordvec))

def timed(mod, path, length, *flags):
    """One sample.py run (main(), checkpoint loading included) writing to a file -> (wall s, CPU s, text)."""
    opt = parse(mod.SampleOptions, [path, "-gpuid", "-1", "-verbose", "0", "-length", str(length), *flags])
    with tempfile.NamedTemporaryFile("w+", encoding="utf-8", suffix=".txt") as out:
        w0, c0 = time.perf_counter(), time.process_time()
        mod.main(opt, out)
        w, c = time.perf_counter() - w0, time.process_time() - c0
        out.seek(0)
        return w, c, out.read()

runs, same = {}, {}
for r in range(repeats):  # interleaved: every configuration once per round, old and new side by side
    for H, path in ckpts.items():
        n_old, n_new = (2000, 20000) if H == "128" else (400, 4000)
        for mode, flags in (("sample", ()), ("argmax", ("-sample", "0"))):
            for impl, mod, n in (("old", old, n_old), ("new", new, n_new)):
                w, c, text = timed(mod, path, n, *flags)
                runs.setdefault(f"{H} {mode} {impl}", []).append((n / w, n / c))
                if mode == "argmax" and r == 0:
                    same.setdefault(H, {})[impl] = text
        for N in (16,):
            n = n_new // 4
            w, c, _ = timed(new, path, n, "-num_samples", str(N))
            runs.setdefault(f"{H} batch{N} new", []).append((N * n / w, N * n / c))
        # the per-core limit: only the step's matrix products (layer 1's row lookup, one matmul per further
        # layer, the decoder), no elementwise work, no Python beyond the loop
        model = load_model(path)[0].eval()
        st = LSTMStep(model)
        with torch.no_grad():
            k = 5000 if H == "128" else 1000
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(k):
                torch.addmm(st.table[3], st.views[0][7], st.w_hh0, out=st.views[0][0])
                for j in range(1, st.L):
                    torch.addmm(st.b[j - 1], st.views[j][8], st.w[j - 1], out=st.views[j][0])
                torch.addmm(st.dec_b, st.h_top, st.dec_w, out=st.logits)
            runs.setdefault(f"{H} matmuls", []).append((k / (time.perf_counter() - t0), k / (time.process_time() - c0)))
identical = {H: t["new"].startswith(t["old"][:-1]) for H, t in same.items()}
print(json.dumps({"runs": runs, "argmax_identical": identical}))
'''


def make_checkpoint(H, iters, data, workdir):
    """A briefly trained 2xH model on tinyshakespeare (so argmax text is text, not one repeated letter)."""
    d = os.path.join(workdir, "data")
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(os.path.join(d, "input.txt")):
        shutil.copy(data, os.path.join(d, "input.txt"))
    cv = os.path.join(workdir, f"cv{H}")
    subprocess.run([sys.executable, os.path.join(ROOT, "charrnn", "train.py"), "-data_dir", d, "-gpuid", "-1",
                    "-threads", "1", "-rnn_size", str(H), "-num_layers", "2", "-max_iters", str(iters),
                    "-eval_val_every", str(iters), "-print_every", "0", "-checkpoint_dir", cv, "-savefile", "bench"],
                   check=True, capture_output=True)
    (name,) = os.listdir(cv)
    return os.path.join(cv, name)


def measure_sampling(data, repeats):
    """Today's sample.py (git show BASELINE_COMMIT) and ours, same checkpoints, interleaved, 1 and 2 threads."""
    with tempfile.TemporaryDirectory() as tmp:
        old = os.path.join(tmp, "old_sample.py")
        with open(old, "w") as f:
            f.write(subprocess.check_output(["git", "show", f"{BASELINE_COMMIT}:charrnn/sample.py"], cwd=ROOT,
                                            text=True))
        ckpts = {"128": make_checkpoint(128, 150, data, tmp), "512": make_checkpoint(512, 25, data, tmp)}
        result = {}
        for threads in (1, 2):
            r = subprocess.run([sys.executable, "-c", SAMPLE_WORKER, str(threads), old, str(repeats),
                                json.dumps(ckpts)], capture_output=True, text=True, check=True)
            result[threads] = json.loads(r.stdout.strip().splitlines()[-1])
            best = {k: max(v)[0] for k, v in result[threads]["runs"].items()}
            print(f"sampling, {threads} thread(s): " + ", ".join(f"{k} {v:,.0f}" for k, v in best.items()), flush=True)
    return result


def sampling_section(result, repeats):
    runs = lambda t, key: result[t]["runs"][key]
    cpu = lambda t, key: max(c for _, c in runs(t, key))  # best chars per CPU second of the process
    wall = lambda t, key: max(w for w, _ in runs(t, key))  # best wall-clock chars/s
    lines = ["### Sampling speed (`sample.py -verbose 0` writing to a file, CPU)", "",
             f"Same checkpoints (2x128 and 2x512 LSTMs, V=65, briefly trained on tinyshakespeare), same run: "
             f"today's `sample.py` (commit {BASELINE_COMMIT}: one `nn.LSTM` call per character, `multinomial`, a "
             f"flush per character) and ours, each called as the script calls it (`main()`, checkpoint loading "
             f"included), in a process with 1 or 2 torch threads. Every configuration ran {repeats} times, "
             f"interleaved (one round = every configuration once, old and new side by side); the table gives the "
             f"best of the {repeats}. The machine is shared with five other engineers' tests and benchmarks (load "
             f"average ~{os.getloadavg()[0]:.0f} on 2 cores when this section was written), so wall-clock speed "
             f"says more about the load than the code: the main figure is characters per CPU second of the "
             f"sampling process (`time.process_time()`), i.e. what one core does when it is given to us, and the "
             f"best wall-clock figure is next to it. Lengths: 2,000 (old) / 20,000 (new) characters for 2x128, "
             f"400 / 4,000 for 2x512.", "",
             "| model | threads | mode | today's sample.py: chars/CPU-s (best wall chars/s) | ours: chars/CPU-s "
             "(best wall chars/s) | ours / today | ours / Lua sample.lua (5.2k) |",
             "|---|---|---|---|---|---|---|"]
    for H in ("128", "512"):
        for t in (1, 2):
            for mode in ("sample", "argmax"):
                o, n = cpu(t, f"{H} {mode} old"), cpu(t, f"{H} {mode} new")
                lua = f"{n / LUA_SAMPLE:.1f}x" if H == "128" else "n/a"
                mode_text = "default (`-sample 1`)" if mode == "sample" else "`-sample 0` (argmax)"
                lines.append(f"| 2x{H} | {t} | {mode_text} | {o:,.0f} ({wall(t, f'{H} {mode} old'):,.0f}) | "
                             f"**{n:,.0f}** ({wall(t, f'{H} {mode} new'):,.0f}) | {n / o:.1f}x | {lua} |")
    ok = all(cpu(1, f"128 {m} new") >= 15600 for m in ("sample", "argmax"))
    ok_wall = all(wall(1, f"128 {m} new") >= 15600 for m in ("sample", "argmax"))
    lines += ["", f"Target (issue 11): >= 15,600 chars/s for 2x128 in both modes at the default `-threads 1`: "
                  f"**{'met' if ok else 'NOT met'}** per CPU second, **{'met' if ok_wall else 'not met'}** in "
                  f"wall-clock time on this shared machine.", ""]
    lines += ["`-num_samples 16` (16 samples side by side, one matmul per layer per step for all), chars/CPU-s "
              "(best wall): " + ", ".join(f"2x{H}, {t} thread(s): {cpu(t, f'{H} batch16 new'):,.0f} "
                                         f"({wall(t, f'{H} batch16 new'):,.0f})" for H in ("128", "512") for t in (1, 2))
              + ".", ""]
    lines += ["Per-core limit: the step's matrix products alone (layer 1's row lookup + one matmul per further "
              "layer + the decoder; nothing else, no Python beyond the loop) run at " + ", ".join(
                  f"{cpu(1, f'{H} matmuls'):,.0f} steps per CPU second for 2x{H}" for H in ("128", "512"))
              + " here, one thread; they read every weight once per character (0.82 MB for 2x128, 12.7 MB for "
              "2x512), so they are bound by cache bandwidth, which the other processes share. Issue 11's estimate "
              "from FLOPs and bytes: 30-50k chars/s for 2x128, ~4k for 2x512.", ""]
    same = result[1]["argmax_identical"]
    lines += ["Argmax text (`-sample 0`, same checkpoint, our first characters vs today's whole output): "
              + ", ".join(f"2x{H} {'identical' if v else 'DIFFERENT'}" for H, v in same.items())
              + ". Sampled text is reproducible for a seed; the random stream differs from today's (Gumbel-max "
              "draws, tested against softmax(logits/T) with a chi-square test in charrnn/tests/test_sample.py).", ""]
    lines += ["All runs (wall chars/s / chars per CPU second): " + "; ".join(
        f"{t} thr {k}: " + ", ".join(f"{w:,.0f}/{c:,.0f}" for w, c in v)
        for t in (1, 2) for k, v in result[t]["runs"].items()) + ".", ""]
    return lines


def measure(kind, H, L, steps, repeats=3):
    """Best of `repeats` fresh processes, each reporting its median step time (a 2-core VM is noisy)."""
    runs = []
    for _ in range(repeats):
        r = subprocess.run([sys.executable, "-c", WORKER, kind, str(H), str(L), str(steps)], capture_output=True,
                           text=True, check=True)
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    best = max(runs, key=lambda o: o["chars_per_s"])
    best["runs"] = [round(o["chars_per_s"]) for o in runs]
    return best


def train_for(minutes, data, workdir):
    d = os.path.join(workdir, "data")
    os.makedirs(d, exist_ok=True)
    shutil.copy(data, os.path.join(d, "input.txt"))
    cmd = [sys.executable, os.path.join(ROOT, "charrnn", "train.py"), "-data_dir", d, "-gpuid", "-1", *RECOMMENDED,
           "-max_time", str(minutes * 60), "-eval_val_every", "200", "-print_every", "0",
           "-checkpoint_dir", os.path.join(workdir, "cv"), "-savefile", "bench"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    curve = [(float(t), int(i), float(e), float(v)) for v, i, e, t in
             re.findall(r"validation loss (\S+) at iteration (\d+) \(epoch (\S+), (\d+)s\)", r.stdout)]
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return curve, time.time() - t0, peak


FAST_PATH_TARGET = 3000  # chars per CPU second; one nn.LSTM call per character managed ~1,300


def fast_path(chars=3000):
    """The sampler's step loop alone (LSTMStep + Draws, no checkpoint, no output) on an untrained 2x128 LSTM,
    V=65, in CPU seconds of this process with one thread; prints the figure and a pass/fail line."""
    import torch

    from charrnn.model import Config, LanguageModel
    from charrnn.sampler import Draws, LSTMStep

    torch.set_num_threads(1)
    torch.manual_seed(0)
    m = LanguageModel(Config(65, 128, 2)).eval()
    step, draw = LSTMStep(m), Draws(1, 65)
    tok = 0
    with torch.no_grad():
        for _ in range(100):  # warm-up
            tok = int(draw(step(tok)))
        t0 = time.process_time()
        for _ in range(chars):
            tok = int(draw(step(tok)))
        rate = chars / (time.process_time() - t0)
    ok = rate > FAST_PATH_TARGET
    print(f"sampler step loop, 2x128 LSTM: {rate:,.0f} chars per CPU s (target > {FAST_PATH_TARGET:,}: "
          f"{'PASS' if ok else 'FAIL'})", flush=True)
    return rate, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare", "input.txt"))
    ap.add_argument("--skip-train", action="store_true", help="only the throughput/memory/sampling part")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each sampling measurement")
    ap.add_argument("--fast-path", action="store_true", help="only time the sampler's step loop (nothing written)")
    args = ap.parse_args()
    fast_rate, fast_ok = fast_path()
    if args.fast_path:
        return
    sampling = measure_sampling(os.path.abspath(args.data), args.repeats)
    rows = []
    for H, L, steps in ((128, 2, 30), (512, 2, 8)):
        fused, naive = measure("fused", H, L, steps), measure("naive", H, L, max(4, steps // 2))
        rows.append((H, L, fused, naive))
        print(f"{L}x{H}: fused {fused['chars_per_s']:.0f} chars/s, naive LSTMCell loop {naive['chars_per_s']:.0f} "
              f"chars/s", flush=True)
    curve, wall, train_rss = [], 0, 0
    if not args.skip_train:
        with tempfile.TemporaryDirectory() as tmp:
            curve, wall, train_rss = train_for(args.minutes, os.path.abspath(args.data), tmp)
        print(f"best validation loss in {args.minutes:g} min: {min(v for *_, v in curve):.4f}", flush=True)

    lines = ["## charrnn", "",
             f"Machine: {machine()}. Commit {git_rev()}, {time.strftime('%Y-%m-%d')}.",
             "Command: `make bench` (`python bench/charrnn_bench.py`), data: tinyshakespeare (1,115,394 chars, V=65).", "",
             "### Training throughput (batch 50 x seq 50, forward + backward + clamp + RMSprop, CPU, 1 thread)", "",
             "Each figure is the best of 3 fresh processes, each timing the median of its steps after 2 warm-up "
             "steps in CPU seconds of the process (`time.process_time()`, one torch thread), so that the other "
             f"work on this shared machine (load average {os.getloadavg()[0]:.0f} on 2 cores when this section was "
             "written) changes the figures little; all runs are listed below the table. (Earlier runs timed wall "
             "clock with 2 threads on a quieter machine: 41,952 and 5,195 chars/s.)", "",
             "| model | ours: fused nn.LSTM | naive nn.LSTMCell loop | ours / naive | ours / Lua char-rnn (11.9k chars/s, "
             "wall) | peak RSS ours / naive |",
             "|---|---|---|---|---|---|"]
    for H, L, f, n in rows:
        lua = f"{f['chars_per_s'] / LUA_CHARS_PER_S:.1f}x" if H == 128 else "n/a (no Lua anchor)"
        lines.append(f"| {L}x{H} | {f['chars_per_s']:,.0f} chars/s ({f['s_per_batch']:.3f} s/batch) | "
                     f"{n['chars_per_s']:,.0f} chars/s ({n['s_per_batch']:.3f} s/batch) | "
                     f"{f['chars_per_s'] / n['chars_per_s']:.1f}x | {lua} | "
                     f"{f['peak_rss_mb']:.0f} / {n['peak_rss_mb']:.0f} MB |")
    lines += ["", "All runs (chars/s): " + "; ".join(f"{L}x{H} ours {f['runs']}, naive {n['runs']}" for H, L, f, n in rows)
              + "."]
    lines += [""] + sampling_section(sampling, args.repeats)
    lines += [f"Sampler step loop alone (`LSTMStep` + `Draws`, untrained 2x128, 3,000 characters, one thread): "
              f"{fast_rate:,.0f} chars per CPU second (target > {FAST_PATH_TARGET:,}: "
              f"**{'PASS' if fast_ok else 'FAIL'}**).", ""]
    if curve:
        best = min(curve, key=lambda c: c[3])
        lines += [f"### Validation loss in {args.minutes:g} minutes of CPU training", "",
                  "Configuration recommended in charrnn/README.md: `python train.py -data_dir data/tinyshakespeare "
                  + " ".join(RECOMMENDED) + f" -max_time {args.minutes * 60:g}`.", "",
                  f"Best validation loss **{best[3]:.4f}** at {best[0]:.0f} s (iteration {best[1]}, epoch {best[2]:.2f}); "
                  f"target <= 1.40. Lua char-rnn default model on the same kind of machine: {LUA_VAL}. "
                  f"Peak RSS of the training process: {train_rss:.0f} MB; wall time including preprocessing "
                  f"and evaluations {wall:.0f} s.", "",
                  "| seconds | iteration | epoch | val loss |", "|---|---|---|---|"]
        lines += [f"| {t:.0f} | {i} | {e:.2f} | {v:.4f} |" for t, i, e, v in curve]
    elif os.path.exists(os.path.join(ROOT, "BENCHMARKS.md")):  # --skip-train keeps the last training result
        old = open(os.path.join(ROOT, "BENCHMARKS.md"), encoding="utf-8").read()
        m = re.search(r"(### Validation loss in .*?)<!-- /charrnn -->", old, re.S)
        if m:
            kept = m.group(1).rstrip()
            note = "_Kept from the last full run (`--skip-train` was given; not re-measured in this run)._"
            lines += [kept if note in kept else kept.replace("\n\n", f"\n\n{note}\n\n", 1)]
    write_section("charrnn", "\n".join(lines))
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
