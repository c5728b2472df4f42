"""Train the chatbot (neuralconvo / chatbot-zh-torch7 `train.lua`).

    python train.py                                   # built-in chatterbot Chinese corpus -> data/
    python train.py --corpus ../../shared/data/dgk_lost_conv --dataDir data/dgk --vocabSize 8000
    python train.py --dataDir data/dgk --resume       # continue exactly where the last run stopped

Writes into --dataDir: corpus.h5 + vocab.json (preprocessed once), model.pt (the best model by
validation perplexity, what eval.py and server.py read) and checkpoint.pt (the latest state, for
--resume; also written on Ctrl-C and when --maxTime/--maxSteps stop the run).
"""
import math
import os
import sys
import time

import torch

from chatbot.corpus import PAD, PairData, collate, prepare, read_meta
from chatbot.model import Seq2Seq, Seq2SeqConfig
from common import checkpoint
from common.cli import UserError, flag, options, parse, run
from common.device import get_device, rng_state, seed_everything, set_rng_state


@options
class TrainOpts:
    """Train a seq2seq chatbot on a dialog corpus."""
    corpus: str = flag("", "a .conv file or folder, a Cornell movie-dialogs folder, or chatterbot YAML "
                           "(default: the built-in chatterbot Chinese corpus)")
    dataDir: str = flag("data/", "folder for the preprocessed corpus, vocabulary and model")
    dataset: int = flag(0, "approximate number of dialogs to use (0 = all)")
    tokens: str = flag("auto", "auto (the corpus's / marks if it has them, else word), word (jieba for "
                               "Chinese, words for English), char, or slash")
    minWordFreq: int = flag(1, "drop words seen fewer times than this")
    vocabSize: int = flag(-1, "keep this many most frequent words (-1 = all)")
    maxExampleLen: int = flag(25, "at most this many tokens per turn")
    valSetSize: float = flag(0.05, "fraction of dialogs held out for validation")
    hiddenSize: int = flag(300, "LSTM state size (= embedding size, as the original)")
    numLayers: int = flag(1, "LSTM layers in encoder and decoder")
    dropout: float = flag(0.2, "dropout on embeddings and outputs (0 = none, as chatbot-zh)")
    attention: str = flag("general", "Luong attention score: general, dot, or none (the original plain "
                                     "encoder-decoder)")
    optim: str = flag("adam", "adam (neuralconvo) or sgd (chatbot-zh: momentum, linear lr decay)")
    learningRate: float = flag(0.001, "learning rate (chatbot-zh used 0.05 with --optim sgd)")
    momentum: float = flag(0.9, "SGD momentum")
    minLR: float = flag(1e-5, "sgd: lowest learning rate")
    saturateEpoch: int = flag(20, "sgd: epoch at which the learning rate reaches minLR")
    maxEpoch: int = flag(50, "maximum number of epochs")
    batchSize: int = flag(10, "pairs per batch")
    gradientClipping: float = flag(5.0, "clip the gradient norm to this (0 = off)")
    earlyStopOnTrain: bool = flag(False, "early-stop on training instead of validation perplexity")
    patience: int = flag(3, "stop after this many epochs without a better perplexity (0 = never)")
    maxTime: float = flag(0.0, "stop after this many seconds, saving a resumable checkpoint (0 = no limit)")
    maxSteps: int = flag(0, "stop after this many batches in all, saving a checkpoint (0 = no limit)")
    resume: bool = flag(False, "continue from DATADIR/checkpoint.pt")
    printEvery: int = flag(100, "print the training loss every this many batches")
    seed: int = flag(123, "random seed")
    threads: int = flag(0, "CPU threads for torch (0 = torch's default)")
    cuda: bool = flag(False, "use CUDA (same as -gpuid 0)")
    opencl: bool = flag(False, "accepted for compatibility; PyTorch has no OpenCL backend")
    gpuid: int = flag(-1, "GPU id, -1 = CPU")


def evaluate(model, data, batch_size, device, mismatch=False):
    """Mean NLL per target token (words or characters, plus <eos>) over a whole split.

    With `mismatch`, each reply is scored after the question of the pair half a batch away (pairs are
    in file order, so almost always from another dialog): how much worse that is tells how much the
    model's replies depend on the question at all."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for src, tgt in data.batches(batch_size, shuffle=False):
            if mismatch:
                half = len(src) // 2
                src = src[half:] + src[:half]
            x, lengths, y_in, y_out = collate(src, tgt, device)
            total += model(x, lengths, y_in, y_out, reduction="sum").item()
            count += (y_out != PAD).sum().item()
    model.train(was_training)
    return total / max(count, 1)


def sgd_lr(opt, epoch):
    """chatbot-zh: lr falls linearly by (minLR - lr0) / saturateEpoch per epoch, floored at minLR."""
    step = (opt.minLR - opt.learningRate) / max(opt.saturateEpoch, 1)
    return max(opt.learningRate + step * (epoch - 1), opt.minLR)


def main(opt):
    # --- setup
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    if opt.opencl:
        print("note: --opencl is accepted but PyTorch has no OpenCL backend; using -gpuid/--cuda", file=sys.stderr)
    if opt.attention not in ("general", "dot", "none"):
        raise UserError(f"--attention {opt.attention}: use general, dot or none")
    if opt.optim not in ("adam", "sgd"):
        raise UserError(f"--optim {opt.optim}: use adam or sgd")
    if opt.batchSize < 1 or opt.hiddenSize < 1 or opt.numLayers < 1:
        raise UserError("--batchSize, --hiddenSize and --numLayers must be positive")
    device = get_device(0 if opt.cuda and opt.gpuid < 0 else opt.gpuid)
    seed_everything(opt.seed)

    # --- data: preprocess once into corpus.h5, then stream batches from it
    h5_path = prepare(opt.corpus, opt.dataDir, opt.tokens, opt.dataset, opt.vocabSize, opt.minWordFreq,
                      opt.maxExampleLen, opt.valSetSize)
    meta = read_meta(h5_path)
    unit = "character" if meta["tokens"] == "char" or meta["input_tokens"] == "char" else "word"
    train_data, val_data = PairData(h5_path, "train"), PairData(h5_path, "val")
    if len(val_data) == 0:
        print("note: no validation pairs (corpus too small or --valSetSize 0): early stopping uses "
              "training perplexity", file=sys.stderr)
    n_batches = train_data.num_batches(opt.batchSize)

    # --- model and optimizer
    cfg = Seq2SeqConfig(len(meta["words"]), opt.hiddenSize, opt.numLayers, opt.dropout, opt.attention)
    model = Seq2Seq(cfg).to(device)
    if opt.optim == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=opt.learningRate)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=opt.learningRate, momentum=opt.momentum)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f}M parameters, attention {opt.attention}, {len(train_data)} training pairs "
          f"({n_batches} batches of {opt.batchSize}), {len(val_data)} validation pairs, "
          f"vocabulary {cfg.vocab_size} ({unit}s)")

    state = dict(epoch=1, step=0, steps_done=0, best_val=math.inf, best_epoch_ppl=math.inf, bad_epochs=0,
                 history=[])
    ck_path = os.path.join(opt.dataDir, "checkpoint.pt")
    model_path = os.path.join(opt.dataDir, "model.pt")
    if opt.resume:
        ck = checkpoint.load(ck_path, "chatbot")
        if ck["source_sha1"] != meta["source_sha1"] or ck["words"] != meta["words"]:
            raise UserError(f"{ck_path} was trained on another corpus or vocabulary than {h5_path}; "
                            "train without --resume, or use another --dataDir")
        if ck["config"] != cfg.to_dict():
            raise UserError(f"{ck_path} has model settings {ck['config']}; resume with the same "
                            "--hiddenSize/--numLayers/--dropout/--attention")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        state = ck["state"]
        set_rng_state(ck["rng"])
        print(f"resuming at epoch {state['epoch']}, batch {state['step']}")

    def save_checkpoint():
        checkpoint.save(ck_path, "chatbot", dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                                                 config=cfg.to_dict(), state=state, rng=rng_state(),
                                                 words=meta["words"], source_sha1=meta["source_sha1"],
                                                 opts=vars(opt)))

    def save_model(val_ppl):
        checkpoint.save(model_path, "chatbot", dict(model=model.state_dict(), config=cfg.to_dict(),
                                                    words=meta["words"], tokens=meta["tokens"],
                                                    input_tokens=meta["input_tokens"], unit=unit,
                                                    source_sha1=meta["source_sha1"], val_ppl=val_ppl,
                                                    epoch=state["epoch"], opts=vars(opt)))

    def validate(train_ppl):
        """Validation perplexity; saves model.pt when it is the best so far."""
        val_ppl = math.exp(evaluate(model, val_data, max(opt.batchSize, 64), device)) if len(val_data) else train_ppl
        if val_ppl < state["best_val"] or not os.path.exists(model_path):
            state["best_val"] = min(val_ppl, state["best_val"])
            save_model(val_ppl)
        return val_ppl

    # --- the loop
    model.train()
    t0 = time.time()
    stopped = False
    try:
        while state["epoch"] <= opt.maxEpoch and not stopped:
            epoch = state["epoch"]
            if opt.optim == "sgd":
                for g in optimizer.param_groups:
                    g["lr"] = sgd_lr(opt, epoch)
            if state["step"] == 0:
                state["loss_sum"], state["tok_sum"] = 0.0, 0
            for src, tgt in train_data.batches(opt.batchSize, epoch, opt.seed, skip=state["step"]):
                x, lengths, y_in, y_out = collate(src, tgt, device)
                loss = model(x, lengths, y_in, y_out)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if opt.gradientClipping > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), opt.gradientClipping)
                optimizer.step()
                n_tok = (y_out != PAD).sum().item()
                state["loss_sum"] += loss.item() * n_tok
                state["tok_sum"] += n_tok
                state["step"] += 1
                state["steps_done"] += 1
                if state["step"] % opt.printEvery == 0:
                    print(f"epoch {epoch} batch {state['step']}/{n_batches} loss {loss.item():.3f} "
                          f"ppl {math.exp(min(loss.item(), 50)):.1f} ({time.time() - t0:.0f}s)", flush=True)
                if (opt.maxTime and time.time() - t0 >= opt.maxTime) or \
                        (opt.maxSteps and state["steps_done"] >= opt.maxSteps):
                    stopped = True
                    break
            train_ppl = math.exp(state["loss_sum"] / state["tok_sum"]) if state["tok_sum"] else math.inf
            if stopped and state["step"] < n_batches:  # mid-epoch stop: keep the best model, resumable
                val_ppl = validate(train_ppl)
                state["history"].append(dict(epoch=epoch, step=state["step"], train_ppl=train_ppl, val_ppl=val_ppl))
                save_checkpoint()
                val_text = f"val ppl {val_ppl:.2f}" if len(val_data) else "no validation set"
                print(f"stopped at epoch {epoch} batch {state['step']}: train ppl {train_ppl:.2f}, "
                      f"{val_text} per {unit} ({time.time() - t0:.0f}s); --resume continues")
                break
            val_ppl = validate(train_ppl)
            state["history"].append(dict(epoch=epoch, step=state["step"], train_ppl=train_ppl, val_ppl=val_ppl))
            watched = train_ppl if opt.earlyStopOnTrain or not len(val_data) else val_ppl
            if watched < state["best_epoch_ppl"]:
                state["best_epoch_ppl"], state["bad_epochs"] = watched, 0
            else:
                state["bad_epochs"] += 1
            val_text = f"val ppl {val_ppl:.2f}" if len(val_data) else "no validation set"
            print(f"epoch {epoch}: train ppl {train_ppl:.2f}, {val_text} per {unit} "
                  f"(best {state['best_val']:.2f}), {time.time() - t0:.0f}s", flush=True)
            state["epoch"], state["step"] = epoch + 1, 0
            save_checkpoint()
            if opt.patience and state["bad_epochs"] >= opt.patience:
                print(f"early stop: no better perplexity for {opt.patience} epochs")
                break
    except KeyboardInterrupt:
        save_checkpoint()
        print(f"\ninterrupted: saved {ck_path} (epoch {state['epoch']}, batch {state['step']}); "
              "--resume continues", file=sys.stderr)
        raise
    finally:
        train_data.close()
        val_data.close()
    print(f"best {'val' if len(val_data) else 'train'} ppl {state['best_val']:.2f} per {unit}; model: {model_path}")
    return state


if __name__ == "__main__":
    run(main, parse(TrainOpts))
