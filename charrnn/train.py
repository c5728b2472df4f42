"""Train a character-level (or word-level) language model, as char-rnn's train.lua.

    cd charrnn && python train.py -data_dir data/tinyshakespeare -rnn_size 512 -num_layers 2 -dropout 0.5
    torchrun --nproc_per_node 2 train.py ...       # DistributedDataParallel, each rank a slice of the batch
"""
import dataclasses
import math
import os
import signal
import sys
import threading
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from charrnn.loader import BatchLoader, prepare
from charrnn.model import LanguageModel, detach_state
from common import checkpoint
from common.cli import UserError, flag, options, parse, run
from common.device import get_device, rng_state, seed_everything, set_rng_state


@options
class TrainOptions:
    """Train a character-level language model (char-rnn)."""
    # data
    data_dir: str = flag("data/tinyshakespeare", "data directory; should contain input.txt")
    tokens: str = flag("char", "char: Unicode characters; word: words (jieba for Chinese, else whitespace)",
                       choices=["char", "word"])
    # model
    rnn_size: int = flag(128, "size of LSTM internal state")
    num_layers: int = flag(2, "number of layers in the LSTM")
    model: str = flag("lstm", "lstm, gru or rnn", choices=["lstm", "gru", "rnn"])
    wordvec_size: int = flag(0, "0: one-hot input as char-rnn; N: learned N-dim embedding "
                                "(used as 256 for -tokens word when 0)")
    # optimization
    learning_rate: float = flag(2e-3, "learning rate")
    learning_rate_decay: float = flag(0.97, "learning rate decay")
    learning_rate_decay_after: float = flag(10, "in number of epochs, when to start decaying the learning rate")
    decay_rate: float = flag(0.95, "decay rate for rmsprop")
    dropout: float = flag(0.0, "dropout for regularization, used after each RNN hidden layer. 0 = no dropout")
    seq_length: int = flag(50, "number of timesteps to unroll for")
    batch_size: int = flag(50, "number of sequences to train on in parallel")
    max_epochs: float = flag(50, "number of full passes through the training data")
    grad_clip: float = flag(5, "clip gradients (element-wise) at this value")
    train_frac: float = flag(0.95, "fraction of data that goes into train set")
    val_frac: float = flag(0.05, "fraction of data that goes into validation set (test_frac = 1 - train - val)")
    init_from: str = flag("", "initialize network parameters from checkpoint at this path (.pt resumes "
                              "exactly; an original char-rnn .t7 starts from its weights)")
    reset_iterations: int = flag(0, "with -init_from: 1 = fine-tune from iteration 0 (char-rnn's behaviour), "
                                    "0 = resume where it stopped")
    max_time: float = flag(0, "stop (evaluate and save) after this many seconds of training; 0 = no limit")
    # bookkeeping
    seed: int = flag(123, "torch manual random number generator seed")
    print_every: int = flag(1, "how many steps/minibatches between printing out the loss")
    eval_val_every: int = flag(1000, "every how many iterations should we evaluate on validation data?")
    checkpoint_dir: str = flag("cv", "output directory where checkpoints get written")
    savefile: str = flag("lstm", "filename to autosave the checkpoint to. Will be inside checkpoint_dir/")
    accurate_gpu_timing: int = flag(0, "set to 1 to synchronize the GPU after each step for exact timings")
    # GPU/CPU
    gpuid: int = flag(0, "which gpu to use. -1 = use CPU")
    opencl: int = flag(0, "accepted for compatibility; OpenCL is not supported (CUDA/MPS/CPU are)")


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
    loss = total / max(loader.count[split], 1)
    if dist.is_initialized():
        t = torch.tensor([loss], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        loss = t.item() / dist.get_world_size()
    return loss


def main(opt: TrainOptions):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = opt.gpuid >= 0 and torch.cuda.is_available()
        dist.init_process_group("nccl" if use_cuda else "gloo")
        device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
        if not use_cuda:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    else:
        device = get_device(opt.gpuid)
    master = rank == 0
    log = print if master else (lambda *a, **k: None)
    if opt.opencl:
        log("note: -opencl is not supported; using CUDA, MPS or the CPU as -gpuid says")
    seed_everything(opt.seed)

    # ---- data
    if master:
        ids, vocab, joiner = prepare(opt.data_dir, opt.tokens)
    if world > 1:
        dist.barrier()
        if not master:
            ids, vocab, joiner = prepare(opt.data_dir, opt.tokens, verbose=False)
    src = os.path.join(opt.data_dir, "input.txt")
    loader = BatchLoader(ids, opt.batch_size, opt.seq_length, opt.train_frac, opt.val_frac, rank, world, src)
    log(f"vocab size: {len(vocab)}; data split: {loader.ntrain} train, {loader.nval} val, {loader.ntest} test "
        f"batches of {opt.batch_size}x{opt.seq_length}")
    if loader.n_batches < 50:
        log("WARNING: less than 50 batches in the data in total? Looks like very small dataset. "
            "You probably want to use smaller batch_size and/or seq_length.")

    # ---- model (fresh, or from a checkpoint)
    ckpt = None
    if opt.init_from:
        if opt.init_from.endswith(".t7"):
            from charrnn.convert import load_t7
            t7_model, t7_vocab, t7_opt = load_t7(opt.init_from)
            ckpt = {"model": t7_model.float().state_dict(), "vocab": t7_vocab, "opt": t7_opt}
        else:
            ckpt = checkpoint.load(opt.init_from, "charrnn")
        if ckpt["vocab"] != vocab:
            diff = sorted(set(vocab) ^ set(ckpt["vocab"]))[:10]
            raise UserError(f"{opt.init_from}: vocabulary differs from {src} ({len(ckpt['vocab'])} vs "
                            f"{len(vocab)} tokens, e.g. {''.join(diff)!r}); train from scratch or use the "
                            f"same text")
        for k in ("rnn_size", "num_layers", "model", "wordvec_size"):  # as char-rnn: the checkpoint decides
            setattr(opt, k, ckpt["opt"].get(k, getattr(opt, k)))
        log(f"loaded {opt.init_from}: {opt.model} {opt.num_layers}x{opt.rnn_size}")
    wordvec = opt.wordvec_size or (256 if opt.tokens == "word" else 0)
    model = LanguageModel(len(vocab), opt.rnn_size, opt.num_layers, opt.model, opt.dropout, wordvec)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    model.to(device)
    log(f"number of parameters in the model: {sum(p.numel() for p in model.parameters())}")
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.RMSprop(model.parameters(), lr=opt.learning_rate, alpha=opt.decay_rate, eps=1e-8)

    iterations = max(1, math.floor(opt.max_epochs * loader.ntrain))
    start, train_losses, val_losses, state = 0, [], {}, None
    resume = ckpt is not None and "optimizer" in ckpt and not opt.reset_iterations
    if resume:
        optimizer.load_state_dict(ckpt["optimizer"])
        for g in optimizer.param_groups:
            g["lr"] = ckpt["lr"]
        start, train_losses, val_losses = ckpt["i"], list(ckpt["train_losses"]), dict(ckpt["val_losses"])
        loader.pointer["train"] = start % loader.ntrain
        set_rng_state(ckpt.get("rng"))
        if ckpt.get("state") is not None and world == 1:
            s = ckpt["state"]
            state = tuple(t.to(device) for t in s) if isinstance(s, (tuple, list)) else s.to(device)
        log(f"resuming at iteration {start}/{iterations}, learning rate {ckpt['lr']:.3g}")
    lr = optimizer.param_groups[0]["lr"]

    def save(i, val_loss, name=None):
        if not master:
            return None
        epoch = i / loader.ntrain
        name = name or f"lm_{opt.savefile}_epoch{epoch:.2f}_{val_loss:.4f}.pt"
        path = os.path.join(opt.checkpoint_dir, name)
        st = None if state is None else tuple(s.cpu() for s in state) if isinstance(state, tuple) else state.cpu()
        checkpoint.save(path, "charrnn", {
            "model": {k: v.cpu() for k, v in model.state_dict().items()},
            "opt": dataclasses.asdict(opt), "vocab": vocab, "joiner": joiner, "tokens": opt.tokens,
            "wordvec_size": wordvec, "train_losses": train_losses, "val_losses": val_losses,
            "val_loss": val_loss, "i": i, "epoch": epoch, "lr": lr, "optimizer": optimizer.state_dict(),
            "rng": rng_state(), "state": st})
        log(f"saving checkpoint to {path}")
        return path

    # ---- the loop: truncated BPTT, state carried across batches (and epochs), as char-rnn
    t_start, i, last_path, loss0 = time.time(), start, None, None
    bar = tqdm(total=iterations, initial=start, disable=not master or not sys.stderr.isatty(), unit="batch",
               dynamic_ncols=True)
    # Ctrl-C: finish the current iteration, save a consistent checkpoint, exit (a second Ctrl-C quits at once)
    interrupt = []

    def on_sigint(signum, frame):
        if interrupt:
            raise KeyboardInterrupt
        interrupt.append(True)
        log("\ninterrupt: finishing this iteration and saving a checkpoint (Ctrl-C again to quit now)")

    main_thread = threading.current_thread() is threading.main_thread()
    old_handler = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        while i < iterations:
            i += 1
            t0 = time.time()
            x, y = (t.to(device, non_blocking=True) for t in loader.next_batch("train"))
            logits, state = net(x, state)
            state = detach_state(state)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            # char-rnn sums the per-timestep gradients (it does not divide by seq_length)
            (loss * opt.seq_length).backward()
            if opt.grad_clip > 0:
                for p in model.parameters():
                    p.grad.clamp_(-opt.grad_clip, opt.grad_clip)
            optimizer.step()
            if opt.accurate_gpu_timing and device.type == "cuda":
                torch.cuda.synchronize()
            dt = time.time() - t0
            train_loss = loss.item()
            out_of_time = opt.max_time > 0 and time.time() - t_start >= opt.max_time
            interrupted = bool(interrupt)
            if world > 1:  # one all_reduce: the mean loss, and whether any rank has to stop (all stop together)
                t = torch.tensor([train_loss, out_of_time, interrupted], dtype=torch.float64, device=device)
                dist.all_reduce(t)
                train_loss, out_of_time, interrupted = t[0].item() / world, t[1].item() > 0, t[2].item() > 0
            train_losses.append(train_loss)
            epoch = i / loader.ntrain
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.4f}", epoch=f"{epoch:.2f}")
            if i % loader.ntrain == 0 and epoch >= opt.learning_rate_decay_after and opt.learning_rate_decay < 1:
                lr *= opt.learning_rate_decay
                for g in optimizer.param_groups:
                    g["lr"] = lr
                log(f"decayed learning rate by a factor {opt.learning_rate_decay} to {lr}")
            if master and opt.print_every > 0 and i % opt.print_every == 0:
                gn = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in model.parameters()))
                pn = torch.sqrt(sum((p.detach().float() ** 2).sum() for p in model.parameters()))
                msg = (f"{i}/{iterations} (epoch {epoch:.3f}), train_loss = {train_loss:6.8f}, "
                       f"grad/param norm = {(gn / pn).item():6.4e}, time/batch = {dt:.4f}s")
                bar.write(msg) if not bar.disable else print(msg)
            if not math.isfinite(train_loss):
                raise UserError("loss is NaN.  This usually indicates a bug. Checkpoints written so far are kept; "
                                "try a lower -learning_rate or -grad_clip")
            loss0 = loss0 if loss0 is not None else train_loss
            if train_loss > loss0 * 3:
                raise UserError("loss is exploding, aborting. Checkpoints written so far are kept; "
                                "try a lower -learning_rate")
            if interrupted:
                bar.close()
                save(i, float("nan"), f"lm_{opt.savefile}_epoch{epoch:.2f}_interrupted.pt")
                log("interrupted; resume with -init_from and the checkpoint above")
                raise KeyboardInterrupt
            if i % opt.eval_val_every == 0 or i == iterations or out_of_time:
                val_loss = evaluate(model, loader, "val", device) if loader.nval else train_loss
                val_losses[i] = val_loss
                log(f"validation loss {val_loss:.4f} at iteration {i} (epoch {epoch:.2f}, "
                    f"{time.time() - t_start:.0f}s)")
                last_path = save(i, val_loss) or last_path
            if out_of_time:
                log(f"stopping after -max_time {opt.max_time:g}s")
                break
    finally:
        bar.close()
        if main_thread:
            signal.signal(signal.SIGINT, old_handler)
        if dist.is_initialized():
            dist.destroy_process_group()
    return last_path


if __name__ == "__main__":
    run(main, parse(TrainOptions))
