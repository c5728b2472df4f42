"""Train the chatbot (neuralconvo / chatbot-zh-torch7 `train.lua`).

    python train.py                                   # built-in chatterbot Chinese corpus -> data/
    python train.py --corpus ../../shared/data/dgk_lost_conv --dataDir data/dgk --tokens char --vocabSize 4000
    python train.py --dataDir data/dgk ... --resume   # continue exactly where the last run stopped

Writes into --dataDir: corpus.h5 + vocab.json (preprocessed once), model.pt (the best model by
validation perplexity, what eval.py and server.py read) and checkpoint.pt (the latest state, for
--resume; also written on Ctrl-C or SIGTERM (exit 130/143) and when --maxTime/--maxCpuTime/--maxSteps stop the run).
"""
import math
import os
import sys
from dataclasses import asdict, dataclass, field

import torch

from chatbot.batches import PairData, collate
from chatbot.metrics import evaluate
from chatbot.model import Seq2Seq, Seq2SeqConfig
from chatbot.prep import CorpusOpts, prepare, read_meta
from chatbot.tokens import PAD
from common import checkpoint
from common.cli import UserError, flag, options, parse, run
from common.device import get_device, native_bf16, rng_state, seed_everything, set_rng_state
from common.signals import StopOnSignal
from common.training import Clock, check_loss


@options
class TrainOpts(CorpusOpts):
    """Train a seq2seq chatbot on a dialog corpus."""
    hiddenSize: int = flag(300, "LSTM state size (= embedding size, as the original)", min=1)
    numLayers: int = flag(1, "LSTM layers in encoder and decoder", min=1)
    dropout: float = flag(0.2, "dropout on embeddings and outputs (0 = none, as chatbot-zh)", min=0, max=1)
    attention: str = flag("general", "Luong attention score: general, dot, or none (the original plain "
                                     "encoder-decoder)")
    softmax: str = flag("adaptive", "output layer: adaptive (frequent tokens in a small head softmax, rare "
                                    "ones in cheaper clusters; exact probabilities, faster) or full (the original)")
    precision: str = flag("auto", "bf16 (bfloat16 autocast of matrix products and LSTMs), fp32, or auto "
                                  "(bf16 on a CPU with AVX512-BF16 or AMX, else fp32)")
    optim: str = flag("adam", "adam (neuralconvo) or sgd (chatbot-zh: momentum, linear lr decay)")
    learningRate: float = flag(0.001, "learning rate (chatbot-zh used 0.05 with --optim sgd)", min=0)
    momentum: float = flag(0.9, "SGD momentum", min=0)
    minLR: float = flag(1e-5, "sgd: lowest learning rate", min=0)
    saturateEpoch: int = flag(20, "sgd: epoch at which the learning rate reaches minLR", min=1)
    maxEpoch: int = flag(50, "maximum number of epochs", min=1)
    batchSize: int = flag(10, "pairs per batch", min=1)
    warmup: int = flag(0, "raise the learning rate linearly from 0 over the first N batches", min=0)
    decay: str = flag("none", "learning-rate decay to 0 at the end of the run: none, linear or cosine; the end "
                              "is --maxCpuTime when given (CPU seconds in all), else --maxEpoch epochs")
    gradientClipping: float = flag(5.0, "clip the gradient norm to this (0 = off)", min=0)
    earlyStopOnTrain: bool = flag(False, "early-stop on training instead of validation perplexity")
    patience: int = flag(3, "stop after this many epochs without a better perplexity (0 = never)", min=0)
    maxTime: float = flag(0.0, "stop after this many seconds, saving a resumable checkpoint (0 = no limit)", min=0)
    maxCpuTime: float = flag(0.0, "stop after this many CPU seconds of training in all (a resumed run counts "
                                  "the CPU seconds before it; 0 = no limit)", min=0)
    maxSteps: int = flag(0, "stop after this many batches in all, saving a checkpoint (0 = no limit)", min=0)
    resume: bool = flag(False, "continue from DATADIR/checkpoint.pt")
    printEvery: int = flag(100, "print the training loss every this many batches", min=1)
    threads: int = flag(0, "CPU threads for torch (0 = torch's default)", min=0)
    cuda: bool = flag(False, "use CUDA (same as -gpuid 0)")
    opencl: bool = flag(False, "accepted for compatibility; PyTorch has no OpenCL backend")
    gpuid: int = flag(-1, "GPU id, -1 = CPU", min=-1)


@dataclass
class Progress:
    """Where the run is; saved in checkpoint.pt, so --resume continues from exactly here."""
    epoch: int = 1
    step: int = 0  # batches done in this epoch
    steps_done: int = 0  # batches done in all
    cpu_s: float = 0.0  # CPU seconds of training (validation included) in all
    loss_sum: float = 0.0  # this epoch's training NLL and token count
    tok_sum: int = 0
    best_val: float = math.inf  # model.pt's validation perplexity
    best_watched: float = math.inf  # best perplexity early stopping watches
    bad_epochs: int = 0
    history: list = field(default_factory=list)


def main(opt):
    check(opt)
    device = get_device(0 if opt.cuda and opt.gpuid < 0 else opt.gpuid)
    seed_everything(opt.seed)
    checkpoint.remove_stale_temporaries(opt.dataDir)  # left by a kill -9 in the middle of a save
    h5_path = prepare(opt)  # preprocess once into corpus.h5, then stream batches from it
    meta = read_meta(h5_path)
    train_data, val_data = PairData(h5_path, "train"), PairData(h5_path, "val")
    model, optimizer = build(opt, meta, device)
    progress = resume(opt, meta, model, optimizer) if opt.resume else Progress()
    amp = use_bf16(opt, device)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, attention {opt.attention}, "
          f"{opt.softmax} softmax{', bf16' if amp else ''}, {len(train_data)} training pairs "
          f"({train_data.num_batches(opt.batchSize)} batches of {opt.batchSize}), {len(val_data)} validation "
          f"pairs, vocabulary {len(meta['words'])} ({unit_of(meta)}s)")
    if len(val_data) == 0:
        print("note: no validation pairs (corpus too small or --valSetSize 0): early stopping uses "
              "training perplexity", file=sys.stderr)
    # --maxTime: wall seconds of this process; --maxCpuTime: CPU seconds of training in all (a resumed run
    # finishes the same budget, which the --decay schedule follows)
    clock = Clock(max_time=opt.maxTime, max_cpu_time=opt.maxCpuTime, cpu_before=progress.cpu_s)
    try:
        with StopOnSignal() as stop:  # SIGINT/SIGTERM: finish the batch, save checkpoint.pt, exit 130/143
            while progress.epoch <= opt.maxEpoch and not stop.requested:
                stopped = train_epoch(opt, model, optimizer, train_data, progress, clock, device, amp, stop)
                if stop.requested:
                    break
                complete = progress.step >= train_data.num_batches(opt.batchSize)
                end_epoch(opt, model, optimizer, val_data, meta, progress, complete, clock, device)
                if stopped or early_stop(opt, progress):
                    break
            if stop.requested:
                save_checkpoint(opt, model, optimizer, meta, progress)
    finally:
        train_data.close()
        val_data.close()
    stop.exit_if_stopped(f"saved {os.path.join(opt.dataDir, 'checkpoint.pt')} (epoch {progress.epoch}, batch "
                         f"{progress.step}); --resume continues")
    print(f"best {'val' if len(val_data) else 'train'} ppl {progress.best_val:.2f} per {unit_of(meta)}; "
          f"model: {os.path.join(opt.dataDir, 'model.pt')}")
    return progress


def check(opt):
    if opt.attention not in ("general", "dot", "none"):
        raise UserError(f"--attention {opt.attention}: use general, dot or none")
    if opt.softmax not in ("adaptive", "full"):
        raise UserError(f"--softmax {opt.softmax}: use adaptive or full")
    if opt.precision not in ("auto", "bf16", "fp32"):
        raise UserError(f"--precision {opt.precision}: use auto, bf16 or fp32")
    if opt.decay not in ("none", "linear", "cosine"):
        raise UserError(f"--decay {opt.decay}: use none, linear or cosine")
    if opt.optim not in ("adam", "sgd"):
        raise UserError(f"--optim {opt.optim}: use adam or sgd")
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    if opt.opencl:
        print("note: --opencl is accepted but PyTorch has no OpenCL backend; using -gpuid/--cuda", file=sys.stderr)


def use_bf16(opt, device):
    """bf16 autocast: asked for, or (auto) on a CPU whose oneDNN runs bf16 natively (AVX512-BF16, AMX)."""
    if opt.precision == "auto":
        return device.type == "cpu" and native_bf16()
    if opt.precision == "bf16" and device.type == "cpu" and not native_bf16():
        raise UserError("--precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), so oneDNN has no "
                        "bf16 LSTM; use --precision fp32 or auto")
    return opt.precision == "bf16"


def unit_of(meta):
    return "character" if meta["tokens"] == "char" or meta["input_tokens"] == "char" else "word"


def build(opt, meta, device):
    cfg = Seq2SeqConfig(len(meta["words"]), opt.hiddenSize, opt.numLayers, opt.dropout, opt.attention, opt.softmax)
    model = Seq2Seq(cfg).to(device)
    fused = device.type == "cpu"  # one fused kernel per parameter instead of a dozen element-wise passes
    if opt.optim == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=opt.learningRate, fused=fused)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=opt.learningRate, momentum=opt.momentum)
    return model, optimizer


def resume(opt, meta, model, optimizer):
    path = os.path.join(opt.dataDir, "checkpoint.pt")
    ck = checkpoint.load(path, "chatbot")
    if ck["source_sha1"] != meta["source_sha1"] or ck["words"] != meta["words"]:
        raise UserError(f"{path} was trained on another corpus or vocabulary than {opt.dataDir}/corpus.h5; "
                        "train without --resume, or use another --dataDir")
    if ck["config"] != model.cfg.to_dict():
        raise UserError(f"{path} has model settings {ck['config']}; resume with the same "
                        "--hiddenSize/--numLayers/--dropout/--attention/--softmax")
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    set_rng_state(ck["rng"])
    progress = Progress(**ck["progress"])
    print(f"resuming at epoch {progress.epoch}, batch {progress.step}")
    return progress


def learning_rate(opt, progress, batches_per_epoch):
    """This batch's learning rate: the base rate (SGD: chatbot-zh's per-epoch schedule), times a linear
    warmup over the first --warmup batches, times the --decay factor of how much of the run is done: the
    share of --maxCpuTime spent when given (so the rate reaches 0 as the CPU budget runs out, however fast
    the machine), else the share of --maxEpoch epochs."""
    lr = sgd_lr(opt, progress.epoch) if opt.optim == "sgd" else opt.learningRate
    if opt.warmup:
        lr *= min(1.0, (progress.steps_done + 1) / opt.warmup)
    if opt.decay != "none":
        if opt.maxCpuTime:
            done = progress.cpu_s / opt.maxCpuTime
        else:
            done = progress.steps_done / (opt.maxEpoch * batches_per_epoch)
        done = min(max(done, 0.0), 1.0)
        lr *= 1.0 - done if opt.decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))
    return lr


def sgd_lr(opt, epoch):
    """chatbot-zh: lr falls linearly by (minLR - lr0) / saturateEpoch per epoch, floored at minLR."""
    step = (opt.minLR - opt.learningRate) / max(opt.saturateEpoch, 1)
    return max(opt.learningRate + step * (epoch - 1), opt.minLR)


def train_epoch(opt, model, optimizer, data, progress, clock, device, amp, stop=None):
    """Train on the rest of this epoch's batches; True if a limit (time, steps) or a signal says stop."""
    model.train()
    n_batches = data.num_batches(opt.batchSize)
    for src, tgt in data.batches(opt.batchSize, progress.epoch, opt.seed, skip=progress.step):
        x, lengths, y_in, y_out = collate(src, tgt, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = model(x, lengths, y_in, y_out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if opt.gradientClipping > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opt.gradientClipping)
        loss = loss.item()
        check_loss(loss, None, where=f"epoch {progress.epoch} batch {progress.step + 1}",
                   hint="lower --learningRate (checkpoint.pt still holds the last saved state)")
        progress.cpu_s = clock.cpu()  # in all, as --maxCpuTime and the --decay schedule count it
        lr = learning_rate(opt, progress, n_batches)
        for g in optimizer.param_groups:
            g["lr"] = lr
        optimizer.step()
        n_tok = int((y_out != PAD).sum())
        progress.loss_sum += loss * n_tok
        progress.tok_sum += n_tok
        progress.step += 1
        progress.steps_done += 1
        if progress.step % opt.printEvery == 0:
            print(f"epoch {progress.epoch} batch {progress.step}/{n_batches} loss {loss:.3f} "
                  f"ppl {math.exp(min(loss, 50)):.1f} lr {lr:.2e} ({clock.wall():.0f}s, {progress.cpu_s:.0f} CPU s)",
                  flush=True)
        out_of_steps = opt.maxSteps and progress.steps_done >= opt.maxSteps
        if clock.out_of_time() or out_of_steps or (stop is not None and stop.requested):
            return True
    return False


def end_epoch(opt, model, optimizer, val_data, meta, progress, complete, clock, device):
    """Validate, keep the best model, note the epoch, and save a checkpoint. A run stopped mid-epoch
    does the same but stays in its epoch (resumable), and early stopping counts only whole epochs."""
    train_ppl = math.exp(progress.loss_sum / progress.tok_sum) if progress.tok_sum else math.inf
    val_ppl = math.exp(evaluate(model, val_data, max(opt.batchSize, 64), device)) if len(val_data) else train_ppl
    if val_ppl < progress.best_val or not os.path.exists(os.path.join(opt.dataDir, "model.pt")):
        progress.best_val = min(val_ppl, progress.best_val)
        save_model(opt, model, meta, progress, val_ppl)
    progress.history.append(dict(epoch=progress.epoch, step=progress.step, train_ppl=train_ppl, val_ppl=val_ppl))
    val_text = f"val ppl {val_ppl:.2f}" if len(val_data) else "no validation set"
    if complete:
        watched = train_ppl if opt.earlyStopOnTrain or not len(val_data) else val_ppl
        if watched < progress.best_watched:
            progress.best_watched, progress.bad_epochs = watched, 0
        else:
            progress.bad_epochs += 1
        print(f"epoch {progress.epoch}: train ppl {train_ppl:.2f}, {val_text} per {unit_of(meta)} "
              f"(best {progress.best_val:.2f}), {clock.wall():.0f}s", flush=True)
        progress.epoch, progress.step, progress.loss_sum, progress.tok_sum = progress.epoch + 1, 0, 0.0, 0
    else:
        print(f"stopped at epoch {progress.epoch} batch {progress.step}: train ppl {train_ppl:.2f}, "
              f"{val_text} per {unit_of(meta)} ({clock.wall():.0f}s); --resume continues", flush=True)
    save_checkpoint(opt, model, optimizer, meta, progress)


def early_stop(opt, progress):
    if opt.patience and progress.bad_epochs >= opt.patience:
        print(f"early stop: no better perplexity for {opt.patience} epochs")
        return True
    return False


def save_checkpoint(opt, model, optimizer, meta, progress):
    checkpoint.save(os.path.join(opt.dataDir, "checkpoint.pt"), "chatbot", dict(
        model=model.state_dict(), optimizer=optimizer.state_dict(), config=model.cfg.to_dict(),
        progress=asdict(progress), rng=rng_state(), words=meta["words"], source_sha1=meta["source_sha1"],
        opts=vars(opt)))


def save_model(opt, model, meta, progress, val_ppl):
    checkpoint.save(os.path.join(opt.dataDir, "model.pt"), "chatbot", dict(
        model=model.state_dict(), config=model.cfg.to_dict(), words=meta["words"], tokens=meta["tokens"],
        input_tokens=meta["input_tokens"], unit=unit_of(meta), context=meta["context"], max_len=meta["max_len"],
        source_sha1=meta["source_sha1"], val_ppl=val_ppl, epoch=progress.epoch, opts=vars(opt)))


if __name__ == "__main__":
    run(main, parse(TrainOpts))
