"""Talk to a trained chatbot (neuralconvo `eval.lua`), or score it.

    python eval.py                          # you> prompt: type a line, get a reply; quit or Ctrl-D ends
    python eval.py --input questions.txt    # answer each line of a file
    python eval.py --beam 5 --debug         # beam search; --debug prints the top-4 table of each step
    python eval.py --temperature 0.8        # sampled replies
    python eval.py --metrics 500            # val perplexity, BLEU-2, distinct-1/2 of greedy replies

Reads DATADIR/model.pt (or --model). The vocabulary travels inside model.pt, so a model always
talks with the vocabulary it was trained on.
"""
import os
import sys

from common.cli import UserError, flag, options, parse, run

PROMPT, ANSWER = "you> ", "neuralconvo> "


@options
class EvalOpts:
    """Chat with a trained model (you> prompt), answer a file of questions, or compute metrics."""
    dataDir: str = flag("data/", "folder that train.py wrote (model.pt, corpus.h5)")
    model: str = flag("", "model file (default: DATADIR/model.pt)")
    input: str = flag("", "answer each line of this UTF-8 file instead of reading the prompt")
    beam: int = flag(1, "beam size (1 = greedy, as the original)", min=1)
    temperature: float = flag(0.0, "sample each reply at this temperature instead of the most likely one "
                                   "(0 = greedy or beam search)", min=0)
    seed: int = flag(123, "random seed for --temperature sampling")
    maxLength: int = flag(20, "at most this many tokens per reply (the original's MAX_OUTPUT_SIZE)", min=1)
    metrics: int = flag(0, "score the model on DATADIR/corpus.h5's validation pairs instead of chatting: "
                           "perplexity, also with mismatched questions, and BLEU-2 and distinct-1/2 of "
                           "greedy replies to the first N (-1 = all)", min=-1)
    debug: bool = flag(False, "print the top-4 next tokens and probabilities of each greedy step")
    threads: int = flag(0, "CPU threads for torch (0 = torch's default)", min=0)
    cuda: bool = flag(False, "use CUDA (same as -gpuid 0)")
    gpuid: int = flag(-1, "GPU id, -1 = CPU", min=-1)


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
import torch

from chatbot.bot import Chatbot
from chatbot.metrics import score
from common.device import get_device


def answer(bot, text, history=(), debug=False):
    """The reply line for one input line (never raises on odd text)."""
    trace = [] if debug else None
    reply = bot.reply(text, history, trace)
    if debug:
        for step, top in enumerate(trace):
            print(f"  step {step}: " + "  ".join(f"{bot.words[i]} {p:.3f}" for i, p in top))
    return reply if reply else "(no words I know: try other words)"


def main(opt):
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    if opt.temperature != opt.temperature or (opt.temperature > 0 and opt.beam > 1):
        raise UserError(f"--temperature {opt.temperature:g}: give 0 (greedy/beam) or a positive value with --beam 1")
    device = get_device(0 if opt.cuda and opt.gpuid < 0 else opt.gpuid)
    path = opt.model or os.path.join(opt.dataDir, "model.pt")
    if not os.path.exists(path):
        raise UserError(f"{path}: no model yet; train one first (python train.py --dataDir {opt.dataDir})")
    bot = Chatbot(path, device, opt.beam, opt.maxLength, opt.temperature, opt.seed)

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
        for line in lines:  # each line is a new conversation
            if line.strip():
                print(f"{PROMPT}{line.strip()}\n{ANSWER}{answer(bot, line, debug=opt.debug)}", flush=True)
        return

    # the interactive loop: you> prompt until EOF or quit; a --context model reads the turns before
    history = []
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
        reply = answer(bot, text, history, opt.debug)
        print(f"{ANSWER}{reply}", flush=True)
        history += [text, reply]


if __name__ == "__main__":
    run(main, parse(EvalOpts))
