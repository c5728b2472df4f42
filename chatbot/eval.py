"""Talk to a trained chatbot (neuralconvo `eval.lua`), or score it.

    python eval.py                          # you> prompt: type a line, get a reply; quit or Ctrl-D ends
    python eval.py --input questions.txt    # answer each line of a file
    python eval.py --beam 5 --debug         # beam search; --debug prints the top-4 table of each step
    python eval.py --metrics 500            # val perplexity, BLEU-2, distinct-1/2 of greedy replies

Reads DATADIR/model.pt (or --model). The vocabulary travels inside model.pt, so a model always
talks with the vocabulary it was trained on.
"""
import math
import os
import sys
from collections import Counter

import torch

from chatbot.corpus import UNK, PairData, collate, detokenize, encode, read_meta
from common import checkpoint
from common.cli import UserError, flag, options, parse, run
from common.device import get_device

PROMPT, ANSWER = "you> ", "neuralconvo> "


@options
class EvalOpts:
    """Chat with a trained model (you> prompt), answer a file of questions, or compute metrics."""
    dataDir: str = flag("data/", "folder that train.py wrote (model.pt, corpus.h5)")
    model: str = flag("", "model file (default: DATADIR/model.pt)")
    input: str = flag("", "answer each line of this UTF-8 file instead of reading the prompt")
    beam: int = flag(1, "beam size (1 = greedy, as the original)")
    maxLength: int = flag(20, "at most this many tokens per reply (the original's MAX_OUTPUT_SIZE)")
    metrics: int = flag(0, "score the model on DATADIR/corpus.h5's validation pairs instead of chatting: "
                           "perplexity, also with mismatched questions, and BLEU-2 and distinct-1/2 of "
                           "greedy replies to the first N (-1 = all)")
    debug: bool = flag(False, "print the top-4 next tokens and probabilities of each greedy step")
    threads: int = flag(0, "CPU threads for torch (0 = torch's default)")
    cuda: bool = flag(False, "use CUDA (same as -gpuid 0)")
    opencl: bool = flag(False, "accepted for compatibility; PyTorch has no OpenCL backend")
    gpuid: int = flag(-1, "GPU id, -1 = CPU")


class Chatbot:
    """A loaded model that answers text. Holds no per-conversation state, so threads may share it."""

    def __init__(self, path, device="cpu", beam=1, max_length=20):
        from chatbot.model import Seq2Seq, Seq2SeqConfig
        ck = checkpoint.load(path, "chatbot", map_location=device)
        self.cfg = Seq2SeqConfig(**ck["config"])
        self.model = Seq2Seq(self.cfg).to(device).eval()
        self.model.load_state_dict(ck["model"])
        self.words = ck["words"]
        self.word_to_id = {w: i for i, w in enumerate(self.words)}
        self.input_tokens, self.unit, self.source_sha1 = ck["input_tokens"], ck["unit"], ck["source_sha1"]
        self.device, self.beam, self.max_length = device, beam, max_length

    def reply_ids(self, ids, trace=None):
        x, lengths = collate([ids], device=self.device)
        return self.model.generate(x, lengths, self.max_length, self.beam, trace=trace)

    def reply(self, text, trace=None):
        ids = encode(text, self.input_tokens, self.word_to_id)
        if not ids:
            return ""
        return detokenize(self.words[i] for i in self.reply_ids(ids, trace))


# ----------------------------------------------------------------------------------------------------
# metrics

def bleu2(hyps, refs):
    """Corpus BLEU-2 (uniform 1/2-gram weights, brevity penalty), one reference per hypothesis."""
    match, total = [0, 0], [0, 0]
    hyp_len = ref_len = 0
    for h, r in zip(hyps, refs):
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in (1, 2):
            hc = Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
            match[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    if min(match) == 0 or hyp_len == 0:
        return 0.0
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(sum(math.log(m / t) for m, t in zip(match, total)) / 2)


def distinct(hyps, n):
    """Distinct n-grams / all n-grams over all replies (Li et al. 2016)."""
    grams = [tuple(h[i:i + n]) for h in hyps for i in range(len(h) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def score(bot, h5_path, n):
    """Perplexity (teacher-forced, all pairs) and BLEU-2 / distinct-1/2 of greedy replies (first n pairs)."""
    from chatbot.train import evaluate
    try:
        meta = read_meta(h5_path)
    except (OSError, KeyError):
        raise UserError(f"{h5_path}: missing or not a corpus.h5 written by train.py; point --dataDir at the "
                        "folder the model was trained in") from None
    if meta["source_sha1"] != bot.source_sha1 or meta["words"] != bot.words:
        raise UserError(f"{h5_path} was built from another corpus or vocabulary than the model; retrain, "
                        "or point --dataDir at the folder the model was trained in")
    data = PairData(h5_path, "val")
    if len(data) == 0:
        raise UserError(f"{h5_path}: no validation pairs to score (train with --valSetSize > 0)")
    ppl = math.exp(evaluate(bot.model, data, 64, bot.device))
    ppl_mismatched = math.exp(evaluate(bot.model, data, 64, bot.device, mismatch=True))
    n = len(data) if n < 0 else min(n, len(data))
    hyps, refs = [], []
    for src, tgt in data.batches(64, shuffle=False):
        for s, t in zip(src, tgt):
            if len(hyps) < n:
                hyps.append(bot.reply_ids(s.tolist()))
                refs.append(t.tolist())
    data.close()
    return dict(pairs=len(data), scored=n, unit=bot.unit, ppl=ppl, ppl_mismatched=ppl_mismatched,
                bleu2=bleu2(hyps, refs),
                distinct1=distinct(hyps, 1), distinct2=distinct(hyps, 2),
                unknown_replies=sum(all(i == UNK for i in h) for h in hyps))


# ----------------------------------------------------------------------------------------------------

def answer(bot, text, debug=False):
    """The reply line for one input line (never raises on odd text)."""
    trace = [] if debug else None
    reply = bot.reply(text, trace)
    if debug:
        for step, top in enumerate(trace):
            print(f"  step {step}: " + "  ".join(f"{bot.words[i]} {p:.3f}" for i, p in top))
    return reply if reply else "(no words I know: try other words)"


def main(opt):
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    if opt.beam < 1 or opt.maxLength < 1:
        raise UserError("--beam and --maxLength must be at least 1")
    device = get_device(0 if opt.cuda and opt.gpuid < 0 else opt.gpuid)
    path = opt.model or os.path.join(opt.dataDir, "model.pt")
    if not os.path.exists(path):
        raise UserError(f"{path}: no model yet; train one first (python train.py --dataDir {opt.dataDir})")
    bot = Chatbot(path, device, opt.beam, opt.maxLength)

    if opt.metrics:
        m = score(bot, os.path.join(opt.dataDir, "corpus.h5"), opt.metrics)
        print(f"validation: {m['pairs']} pairs, perplexity {m['ppl']:.2f} per {m['unit']}; greedy replies to "
              f"{m['scored']}: BLEU-2 {100 * m['bleu2']:.2f}, distinct-1 {m['distinct1']:.3f}, "
              f"distinct-2 {m['distinct2']:.3f}")
        print(f"with each reply after another dialog's question: perplexity {m['ppl_mismatched']:.2f} "
              f"(the question lowers perplexity by {100 * (1 - m['ppl'] / m['ppl_mismatched']):.1f}%)")
        return m

    if opt.input:
        try:
            with open(opt.input, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except UnicodeDecodeError:
            raise UserError(f"{opt.input}: not UTF-8 text; convert it first (e.g. iconv -f GBK -t UTF-8)") from None
        except OSError as e:
            raise UserError(f"{opt.input}: cannot read ({e.strerror})") from None
        for line in lines:
            if line.strip():
                print(f"{PROMPT}{line.strip()}\n{ANSWER}{answer(bot, line, opt.debug)}", flush=True)
        return

    # the interactive loop: you> prompt until EOF or quit
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")  # a stray non-UTF-8 byte must not end the session
    while True:
        print(PROMPT, end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            print()
            break
        text = line.strip()
        if text in ("quit", "exit"):
            break
        if not text:
            print("(type something to say, or quit)", flush=True)
            continue
        print(f"{ANSWER}{answer(bot, text, opt.debug)}", flush=True)


if __name__ == "__main__":
    run(main, parse(EvalOpts))
