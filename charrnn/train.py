"""Train a character-level (or word-level) language model, as char-rnn's train.lua.

    cd charrnn && python train.py -data_dir data/tinyshakespeare -rnn_size 512 -num_layers 2 -dropout 0.5
    torchrun --nproc_per_node 2 train.py ...       # DistributedDataParallel, each rank a slice of the batch
"""
import dataclasses
import math
import os
import sys
import time

from common.cli import UserError, flag, options, parse, run


@options
class TrainOptions:
    """Train a character-level language model (char-rnn)."""
    # data
    data_dir: str = flag("data/tinyshakespeare", "data directory; should contain input.txt")
    tokens: str = flag("char", "char: Unicode characters; word: words (jieba for Chinese, else whitespace)",
                       choices=["char", "word"])
    # model
    rnn_size: int = flag(128, "size of LSTM internal state", min=1)
    num_layers: int = flag(2, "number of layers in the LSTM", min=1)
    model: str = flag("lstm", "lstm, gru or rnn", choices=["lstm", "gru", "rnn"])
    wordvec_size: int = flag(0, "0: one-hot input as char-rnn; N: learned N-dim embedding "
                                "(used as 256 for -tokens word when 0)", min=0)
    # optimization
    learning_rate: float = flag(2e-3, "learning rate", min=0)
    learning_rate_decay: float = flag(0.97, "learning rate decay", min=0)
    learning_rate_decay_after: float = flag(10, "in number of epochs, when to start decaying the learning rate", min=0)
    decay_rate: float = flag(0.95, "decay rate for rmsprop", min=0, max=1)
    dropout: float = flag(0.0, "dropout for regularization, used after each RNN hidden layer. 0 = no dropout", min=0, max=1)
    seq_length: int = flag(50, "number of timesteps to unroll for", min=1)
    batch_size: int = flag(50, "number of sequences to train on in parallel", min=1)
    max_epochs: float = flag(50, "number of full passes through the training data", min=0)
    grad_clip: float = flag(5, "clip gradients (element-wise) at this value; 0 = off", min=0)
    train_frac: float = flag(0.95, "fraction of data that goes into train set", min=0, max=1)
    val_frac: float = flag(0.05, "fraction of data that goes into validation set (test_frac = 1 - train - val)", min=0, max=1)
    init_from: str = flag("", "initialize network parameters from checkpoint at this path (.pt resumes "
                              "exactly; an original char-rnn .t7 starts from its weights)")
    reset_iterations: int = flag(0, "with -init_from: 1 = fine-tune from iteration 0 (char-rnn's behaviour), "
                                    "0 = resume where it stopped", min=0, max=1)
    max_iters: int = flag(0, "new: stop (evaluate and save) after this many iterations in all; 0 = -max_epochs "
                             "decides", min=0)
    max_time: float = flag(0, "new: stop (evaluate and save) after this many wall-clock seconds of training; "
                              "0 = no limit", min=0)
    max_cpu_time: float = flag(0, "new: stop (evaluate and save) after this many CPU seconds of this process; "
                                  "0 = no limit", min=0)
    # bookkeeping
    seed: int = flag(123, "torch manual random number generator seed")
    print_every: int = flag(1, "how many steps/minibatches between printing out the loss; 0 = never", min=0)
    eval_val_every: int = flag(1000, "every how many iterations should we evaluate on validation data?", min=1)
    checkpoint_dir: str = flag("cv", "output directory where checkpoints get written")
    savefile: str = flag("lstm", "filename to autosave the checkpoint to. Will be inside checkpoint_dir/")
    accurate_gpu_timing: int = flag(0, "set to 1 to synchronize the GPU after each step for exact timings", min=0, max=1)
    # GPU/CPU
    gpuid: int = flag(0, "which gpu to use. -1 = use CPU", min=-1)
    threads: int = flag(0, "new: torch CPU threads; 0 = torch's default (all cores, shared out under torchrun). "
                           "On a busy machine 1 is often faster", min=0)
    opencl: int = flag(0, "accepted for compatibility; OpenCL is not supported (CUDA/MPS/CPU are)", min=0, max=1)


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from charrnn.loader import BatchLoader, prepare
from charrnn.lua_checkpoint import load_t7
from charrnn.model import Config, LanguageModel, detach_state
from common import checkpoint
from common.device import close_distributed, init_distributed, rng_state, seed_everything, set_rng_state
from common.signals import StopOnSignal
from common.training import Clock, agree, check_loss


@dataclasses.dataclass
class Progress:
    """Where a run stands: what a checkpoint carries besides the weights and the optimizer."""
    i: int = 0
    lr: float = 0.0
    train_losses: list = dataclasses.field(default_factory=list)
    val_losses: dict = dataclasses.field(default_factory=dict)
    state: object = None  # the RNN state carried from batch to batch, as char-rnn


def load_data(opt, rank, world, log):
    """input.txt -> (BatchLoader for this rank's streams, vocab, joiner); rank 0 preprocesses first."""
    if rank == 0:
        ids, vocab, joiner = prepare(opt.data_dir, opt.tokens)
    if world > 1:
        dist.barrier()
        if rank != 0:
            ids, vocab, joiner = prepare(opt.data_dir, opt.tokens, verbose=False)
    src = os.path.join(opt.data_dir, "input.txt")
    loader = BatchLoader(ids, opt.batch_size, opt.seq_length, opt.train_frac, opt.val_frac, rank, world, src)
    log(f"vocab size: {len(vocab)}; data split: {loader.ntrain} train, {loader.nval} val, {loader.ntest} test "
        f"batches of {opt.batch_size}x{opt.seq_length}")
    if loader.n_batches < 50:
        log("WARNING: less than 50 batches in the data in total? Looks like very small dataset. "
            "You probably want to use smaller batch_size and/or seq_length.")
    return loader, vocab, joiner


ARCHITECTURE = ("model", "num_layers", "rnn_size", "wordvec_size")  # what -init_from's checkpoint decides


def model_config(opt, vocab_size) -> Config:
    """The model the flags describe (-tokens word without -wordvec_size: a 256-dim embedding)."""
    wordvec = opt.wordvec_size or (256 if opt.tokens == "word" else 0)
    return Config(vocab_size, opt.rnn_size, opt.num_layers, opt.model, opt.dropout, wordvec)


def load_init(opt, config, vocab, log):
    """-init_from: our .pt (resumable) or a Lua .t7 (weights only) -> (checkpoint or None, Config to build).

    As char-rnn's init_from, the checkpoint's architecture wins over the flags; `opt` stays as given, and
    one line says which values the checkpoint imposes."""
    if not opt.init_from:
        return None, config
    if opt.init_from.endswith(".t7"):
        t7_model, t7_vocab, _ = load_t7(opt.init_from)
        ckpt = {"model": t7_model.float().state_dict(), "vocab": t7_vocab, "config": t7_model.cfg.to_dict()}
    else:
        ckpt = checkpoint.load(opt.init_from, "charrnn")
    if ckpt["vocab"] != vocab:
        diff = sorted(set(vocab) ^ set(ckpt["vocab"]))[:10]
        raise UserError(f"{opt.init_from}: vocabulary differs from {os.path.join(opt.data_dir, 'input.txt')} "
                        f"({len(ckpt['vocab'])} vs {len(vocab)} tokens, e.g. {''.join(diff)!r}); train from "
                        f"scratch or use the same text")
    saved = Config.from_checkpoint(ckpt)
    imposed = {k: getattr(saved, k) for k in ARCHITECTURE}
    overridden = [f"-{k} {getattr(config, k)}" for k in ARCHITECTURE if getattr(config, k) != imposed[k]]
    log(f"-init_from {opt.init_from} imposes " + " ".join(f"-{k} {v}" for k, v in imposed.items()) +
        (f" (instead of {' '.join(overridden)})" if overridden else " (the same as the flags)"))
    return ckpt, dataclasses.replace(config, **imposed)


def resume(ckpt, optimizer, loader, opt, device, world, log) -> Progress:
    """A fresh Progress, or the checkpoint's (optimizer, RNG, data pointer and carried state restored)."""
    if ckpt is None or "optimizer" not in ckpt or opt.reset_iterations:
        return Progress(lr=opt.learning_rate)
    optimizer.load_state_dict(ckpt["optimizer"])
    for g in optimizer.param_groups:
        g["lr"] = ckpt["lr"]
    progress = Progress(ckpt["i"], ckpt["lr"], list(ckpt["train_losses"]), dict(ckpt["val_losses"]))
    loader.pointer["train"] = progress.i % loader.ntrain
    set_rng_state(ckpt.get("rng"))
    if ckpt.get("state") is not None and world == 1:
        s = ckpt["state"]
        progress.state = tuple(t.to(device) for t in s) if isinstance(s, (tuple, list)) else s.to(device)
    log(f"resuming at iteration {progress.i}, learning rate {progress.lr:.3g}")
    return progress


def train_step(net, model, optimizer, x, y, progress, opt):
    """Forward, backward (summed over timesteps, as char-rnn), element-wise clamp, RMSprop -> loss tensor."""
    logits, state = net(x, progress.state)
    progress.state = detach_state(state)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    optimizer.zero_grad(set_to_none=True)
    (loss * opt.seq_length).backward()
    if opt.grad_clip > 0:
        torch.nn.utils.clip_grad_value_(model.parameters(), opt.grad_clip)
    optimizer.step()
    return loss


def decay_lr(optimizer, progress, opt, ntrain, log):
    """At each epoch end from -learning_rate_decay_after on: lr *= -learning_rate_decay."""
    if progress.i % ntrain == 0 and progress.i / ntrain >= opt.learning_rate_decay_after and opt.learning_rate_decay < 1:
        progress.lr *= opt.learning_rate_decay
        for g in optimizer.param_groups:
            g["lr"] = progress.lr
        log(f"decayed learning rate by a factor {opt.learning_rate_decay} to {progress.lr}")


def progress_line(model, progress, iterations, epoch, dt):
    gn = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in model.parameters()))
    pn = torch.sqrt(sum((p.detach().float() ** 2).sum() for p in model.parameters()))
    return (f"{progress.i}/{iterations} (epoch {epoch:.3f}), train_loss = {progress.train_losses[-1]:6.8f}, "
            f"grad/param norm = {(gn / pn).item():6.4e}, time/batch = {dt:.4f}s")


def evaluate(model, loader, split, device):
    """Mean loss over the whole split, from a zero state carried across its batches (as eval_split)."""
    model.eval()
    state, total = None, 0.0
    with torch.no_grad():
        for k in range(loader.count[split]):
            x, y = (t.to(device) for t in loader.batch(split, k))
            logits, state = model(x, state)
            total += F.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
    model.train()
    (loss,) = agree(total / max(loader.count[split], 1), device=device)  # the mean over the ranks under DDP
    return loss


def save(path, model, optimizer, progress, opt, vocab, joiner, epoch, val_loss):
    st = progress.state
    st = None if st is None else tuple(s.cpu() for s in st) if isinstance(st, tuple) else st.cpu()
    checkpoint.save(path, "charrnn", {
        "model": {k: v.cpu() for k, v in model.state_dict().items()}, "config": model.cfg.to_dict(),
        "opt": dataclasses.asdict(opt), "vocab": vocab, "joiner": joiner, "tokens": opt.tokens,
        "train_losses": progress.train_losses, "val_losses": progress.val_losses,
        "val_loss": val_loss, "i": progress.i, "epoch": epoch, "lr": progress.lr, "optimizer": optimizer.state_dict(),
        "rng": rng_state(), "state": st})
    return path


def main(opt: TrainOptions):
    device, rank, world = init_distributed(opt.gpuid)
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    master = rank == 0
    log = print if master else (lambda *a, **k: None)
    if opt.opencl:
        log("note: -opencl is not supported; using CUDA, MPS or the CPU as -gpuid says")
    seed_everything(opt.seed)
    if master:
        checkpoint.remove_stale_temporaries(opt.checkpoint_dir)  # left by a kill -9 mid-save
    try:
        # data, model (fresh or from -init_from), optimizer, and where the run stands
        loader, vocab, joiner = load_data(opt, rank, world, log)
        ckpt, config = load_init(opt, model_config(opt, len(vocab)), vocab, log)  # the flags, or the checkpoint's
        model = LanguageModel(config)
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
        model.to(device)
        log(f"number of parameters in the model: {sum(p.numel() for p in model.parameters())}")
        net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
        optimizer = torch.optim.RMSprop(model.parameters(), lr=opt.learning_rate, alpha=opt.decay_rate, eps=1e-8)
        progress = resume(ckpt, optimizer, loader, opt, device, world, log)
        iterations = max(1, math.floor(opt.max_epochs * loader.ntrain))
        iterations = min(iterations, opt.max_iters) if opt.max_iters > 0 else iterations

        def save_as(name, val_loss):
            path = os.path.join(opt.checkpoint_dir, name)
            if master:
                save(path, model, optimizer, progress, opt, vocab, joiner, progress.i / loader.ntrain, val_loss)
                log(f"saving checkpoint to {path}")
            return path

        # the loop: truncated BPTT, the state carried across batches (and epochs), as char-rnn
        clock, last_path, first_loss = Clock(opt.max_time, opt.max_cpu_time), None, None
        bar = tqdm(total=iterations, initial=progress.i, disable=not master or not sys.stderr.isatty(), unit="batch",
                   dynamic_ncols=True)
        with bar, StopOnSignal() as ctrl_c:  # SIGINT/SIGTERM: finish the iteration, save, exit 130/143
            while progress.i < iterations:
                progress.i += 1
                t0 = time.time()
                x, y = (t.to(device, non_blocking=True) for t in loader.next_batch("train"))
                loss = train_step(net, model, optimizer, x, y, progress, opt).item()
                if opt.accurate_gpu_timing and device.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.time() - t0
                loss, out_of_time, interrupted = agree(loss, clock.out_of_time(), ctrl_c.requested, device=device)
                progress.train_losses.append(loss)
                epoch = progress.i / loader.ntrain
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", epoch=f"{epoch:.2f}")
                decay_lr(optimizer, progress, opt, loader.ntrain, log)
                if master and opt.print_every > 0 and progress.i % opt.print_every == 0:
                    msg = progress_line(model, progress, iterations, epoch, dt)
                    bar.write(msg) if not bar.disable else print(msg)
                first_loss = loss if first_loss is None else first_loss
                check_loss(loss, first_loss, explode=3, where=f"iteration {progress.i}",
                           hint="try a lower -learning_rate or -grad_clip")
                if interrupted:
                    save_as(f"lm_{opt.savefile}_epoch{epoch:.2f}_interrupted.pt", float("nan"))
                    ctrl_c.exit_if_stopped("resume with -init_from and the checkpoint above")
                    sys.exit(130)  # another rank was signalled
                if progress.i % opt.eval_val_every == 0 or progress.i == iterations or out_of_time:
                    val_loss = evaluate(model, loader, "val", device) if loader.nval else loss
                    progress.val_losses[progress.i] = val_loss
                    log(f"validation loss {val_loss:.4f} at iteration {progress.i} (epoch {epoch:.2f}, "
                        f"{clock.wall():.0f}s)")
                    last_path = save_as(f"lm_{opt.savefile}_epoch{epoch:.2f}_{val_loss:.4f}.pt", val_loss)
                if out_of_time:
                    log(f"stopping after {clock.reason() or 'another rank ran out of time'}")
                    break
        return last_path if master else None
    finally:
        close_distributed()


if __name__ == "__main__":
    run(main, parse(TrainOptions))
