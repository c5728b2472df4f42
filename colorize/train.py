"""Train the colorization network on a folder of photos (the original released no training code).

    python colorize/train.py -data_dir photos/ -checkpoint_dir cv/                  # flat folder: colour loss
    python colorize/train.py -data_dir places/ -gpu 0 -batch_size 128               # class subfolders: + 1/300 CE
    torchrun --nproc_per_node 2 colorize/train.py -data_dir photos/ ...              # DistributedDataParallel

The paper's recipe: ADADELTA, 224x224 crops of 256x256 photos with flips, loss = colour MSE (Frobenius,
per image) + 1/300 x classification cross-entropy. Validation PSNR is measured each epoch on held-out
photos through the same pipeline colorize.py uses.
New: `-loss classify` trains the classification loss of Zhang, Isola and Efros (ECCV 2016) instead: one logit
per in-gamut ab bin, soft-encoded targets, class rebalancing (`-rebalance`), annealed-mean decoding
(`-temperature`, stored in the checkpoint for colorize.py).
"""
import dataclasses
import errno
import os
import sys
import tempfile
from pathlib import Path

if os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # run as a script: this folder's colorize.py must not hide the colorize package


from common.cli import UserError, flag, options, parse, run

MEAN = 0.45  # luminance mean subtracted from the input (the original stores its own in colornet.t7)


@options
class TrainOptions:
    """Train the joint global/local colorization network (Iizuka et al. 2016) on your photos."""
    data_dir: str = flag("", "folder of colour photos, flat or one subfolder per class (Places-style)")
    checkpoint_dir: str = flag("cv", "where checkpoints are written")
    max_iters: int = flag(200000, "training iterations (the paper: about 200k at batch 128)", min=0)
    batch_size: int = flag(128, "photos per iteration (split across processes under torchrun)", min=1)
    image_size: int = flag(224, "training crop side (a multiple of 32); photos are scaled to 256/224 of it", min=32)
    learning_rate: float = flag(1.0, "learning rate (ADADELTA's is a multiplier, 1.0 as the paper)")
    optimizer: str = flag("adadelta", "adadelta (the paper) or adam", choices=["adadelta", "adam"])
    loss: str = flag("l2", "l2: the paper's MSE on ab; weighted: MSE weighted by 1 + 3 x true chroma / 100, "
                           "which pushes against greyish averages; classify: new, Zhang et al.'s cross-entropy over "
                           "226 in-gamut ab bins 10 apart (soft-encoded targets, -rebalance, -temperature)",
                     choices=["l2", "weighted", "classify"])
    rebalance: float = flag(0.5, "-loss classify: class rebalancing, lambda of Zhang et al.: pixel weights "
                                 "1 / ((1 - lambda) p + lambda / K) of the training photos' smoothed ab-bin "
                                 "frequencies p, mean weight 1; 1 = no rebalancing", min=0, max=1)
    temperature: float = flag(0.38, "-loss classify: annealed-mean temperature colorize.py decodes with, stored in "
                                    "the model (Zhang et al.: 0.38; 1 = the mean of the distribution, muted where "
                                    "the net is unsure)", min=0.01, max=10)
    width: int = flag(1, "divide every channel count by this (1 = the paper's 42M-parameter network)", min=1)
    global_size: int = flag(0, "global path input side; 0 = image_size (the paper trains at 224 only)", min=0)
    batch_norm: int = flag(1, "1 = BatchNorm after each convolution, as the paper trains")
    val_frac: float = flag(0.05, "fraction of photos held out for the validation PSNR", min=0, max=1)
    val_dir: str = flag("", "a separate validation folder (overrides -val_frac)")
    eval_every: int = flag(0, "iterations between validations; 0 = once per epoch", min=0)
    save_every: int = flag(1000, "iterations between checkpoints (and one at the end)", min=1)
    max_time: float = flag(0, "stop after this many wall-clock seconds of this process; 0 = no limit", min=0)
    max_cpu_time: float = flag(0, "stop after this many CPU seconds of this process; 0 = no limit", min=0)
    init_from: str = flag("", "a .pt checkpoint: resume exactly (or a converted colornet .pt to fine-tune)")
    gpu: int = flag(-1, "GPU id; -1 = CPU")
    amp: int = flag(1, "mixed precision (bfloat16 autocast): 1 on a GPU, 2 on the CPU too, 0 off")
    seed: int = flag(123, "random seed")
    print_every: int = flag(10, "iterations between loss lines", min=1)


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import rgb2lab
from tqdm import tqdm

from colorize import data, metrics, pipeline
from colorize.model import ColorNet, ColorNetConfig
from common import checkpoint
from common.device import close_distributed, init_distributed, seed_everything
from common.signals import StopOnSignal
from common.training import Clock, agree, check_loss


def split_files(opt):
    files, labels, classes = data.scan(opt.data_dir)
    if opt.val_dir:
        vfiles, vlabels, _ = data.scan(opt.val_dir)
        return (files, labels), (vfiles, vlabels), classes
    order = np.random.default_rng(opt.seed).permutation(len(files))
    n_val = int(round(len(files) * opt.val_frac)) if len(files) > 1 else 0
    val, train = sorted(order[:n_val]), sorted(order[n_val:])
    pick = lambda idx: ([files[i] for i in idx], [labels[i] for i in idx] if labels else None)  # noqa: E731
    return pick(train), pick(val), classes


def color_loss(pred, target, kind, classify=None):
    """The colour loss of a batch; classify = (soft_encoding(bins), rebalancing weights) for -loss classify."""
    if kind == "classify":
        return classify_loss(pred, target, *classify)
    err = (pred.float() - target) ** 2
    if kind == "weighted":
        chroma = ((target - 0.5) * 200).norm(dim=1, keepdim=True)
        err = err * (1 + 3 * chroma / 100)
    return err.flatten(1).sum(1).mean()  # the paper's Frobenius norm per image


def soft_encoding(bins, sigma=5.0):
    """Zhang et al.'s soft-encoded targets, tabulated for every ab on a 1-unit grid over [-110, 110]^2 (a look-up
    per pixel instead of a search over the bins: 0.44 -> 0.01 CPU s a demo step) -> (the 5 nearest bins, nearest
    first; their weights, a Gaussian of sigma Lab units normalised to sum 1), each 221^2 x 5."""
    r = torch.arange(-110, 111, dtype=torch.float32)
    ab = torch.stack(torch.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)
    d2, near = (torch.cdist(ab, bins.float().cpu()) ** 2).topk(5, dim=1, largest=False)
    return near.to(bins.device), torch.softmax(-d2 / (2 * sigma ** 2), 1).to(bins.device)


def classify_loss(logits, target, encoding, weights):
    """Zhang et al.'s multinomial loss: each pixel's true ab (rounded to 1 Lab unit) soft-encoded over its 5
    nearest bins, cross-entropy against the predicted distribution, weighted by the rebalancing weight of the
    nearest bin, summed per image (as the colour MSE), averaged over the batch."""
    B, K = logits.shape[:2]
    ab = ((target.float() - 0.5) * 200).round().clamp(-110, 110).long() + 110
    cell = (ab[:, 0] * 221 + ab[:, 1]).flatten()
    near, q = encoding[0][cell], encoding[1][cell]
    logp = torch.log_softmax(logits.float(), 1).permute(0, 2, 3, 1).reshape(-1, K)
    ce = -(q * logp.gather(1, near)).sum(1) * weights[near[:, 0]]
    return ce.view(B, -1).sum(1).mean()


def rebalancing_weights(train_set, bins, lam, sigma=5.0, max_photos=1000, seed=0):
    """Zhang et al.'s class rebalancing -> (weight per bin, frequency per bin): every 2nd pixel's nearest bin over
    up to max_photos training photos (a seeded choice), smoothed by a Gaussian of sigma Lab units over the bins,
    mixed with the uniform distribution by lam and inverted; scaled so that the expected weight is 1."""
    bins = bins.double()
    counts = torch.zeros(len(bins), dtype=torch.float64)
    for i in sorted(np.random.default_rng(seed).permutation(len(train_set))[:max_photos].tolist()):
        rgb = train_set.photo(i)
        if rgb is None:
            continue
        ab = torch.from_numpy(rgb2lab(rgb[::2, ::2])[..., 1:].reshape(-1, 2))
        for chunk in ab.split(65536):
            counts += torch.bincount(torch.cdist(chunk, bins).argmin(1), minlength=len(bins))
    if not counts.sum():
        raise UserError("no usable colour photos in the training data")
    smooth = torch.exp(-torch.cdist(bins, bins) ** 2 / (2 * sigma ** 2)) @ (counts / counts.sum())
    p = smooth / smooth.sum()
    w = 1 / ((1 - lam) * p + lam / len(bins))
    return (w / (p * w).sum()).float(), p.float()


@torch.no_grad()
def validate(model, files, device, mean, recombine="lab", max_side=512):
    """Mean PSNR (dB) of colorized val photos (gray input) against the originals, as colorize.py makes them."""
    model.eval()
    scores = []
    for f in files:
        rgb = data.load_rgb(f)
        if rgb is None:
            continue
        y = (rgb.astype(np.float32) / 255) @ data.Y_WEIGHTS
        out, _ = pipeline.colorize_luminance(model, mean, y, device, recombine, max_side)
        scores.append(metrics.psnr(out, rgb))
    model.train()
    return float(np.mean(scores)) if scores else float("nan")


@dataclasses.dataclass
class Progress:
    """Where a run stands: what a checkpoint carries besides the weights, the optimizer and the options."""
    it: int = 0
    history: dict = dataclasses.field(default_factory=lambda: {"train_loss": [], "val_psnr": []})
    cpu_before: float = 0.0  # CPU seconds of the runs this one resumes


def check_options(opt, world):
    if opt.image_size % 32:
        raise UserError(f"-image_size {opt.image_size}: use a multiple of 32 (e.g. 224)")
    if opt.batch_size % world:
        raise UserError(f"-batch_size {opt.batch_size} does not split over {world} processes")
    if not opt.data_dir:
        raise UserError("give -data_dir, a folder of colour photos")
    check_checkpoint_dir(opt.checkpoint_dir)


def check_checkpoint_dir(folder):
    """Fail now, not at the first checkpoint, when -checkpoint_dir cannot be written (creating nothing yet)."""
    parent = Path(os.path.abspath(folder))
    while not parent.exists():
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder")
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as e:
        raise UserError(f"-checkpoint_dir {folder}: cannot write there ({parent}: {e.strerror})") from None


def load_data(opt, log):
    """-> (training crops, validation photo files, class names: empty for a flat folder)."""
    (train_files, train_labels), (val_files, _), classes = split_files(opt)
    train_set = data.PhotoCrops(train_files, train_labels, opt.image_size, MEAN, opt.seed)
    log(f"{len(train_files)} training photos, {len(val_files)} validation; "
        f"{len(classes) or 'no'} classes{' (colour + 1/300 classification loss)' if classes else ''}")
    return train_set, val_files, classes


def build_model(opt, ck, classes, device):
    """-> (model, config, luminance mean): fresh from the flags, or ck's network (resume, or fine-tune a
    converted original: its classifier is dropped when the classes differ, its stored mean kept)."""
    if ck is None:
        config = ColorNetConfig(width=opt.width, global_size=opt.global_size or opt.image_size,
                                n_classes=len(classes), batch_norm=bool(opt.batch_norm),
                                ab_grid=10 if opt.loss == "classify" else 0, temperature=opt.temperature)
        return ColorNet(config).to(device), config, MEAN
    config = dataclasses.replace(ColorNetConfig(**ck["config"]), n_classes=len(classes))
    if bool(config.ab_grid) != (opt.loss == "classify"):
        kind = "classifies ab bins (-loss classify)" if config.ab_grid else "regresses ab (-loss l2 or weighted)"
        raise UserError(f"-init_from {opt.init_from}: that network {kind}; train it with the same kind of -loss")
    if config.ab_grid:
        config.temperature = opt.temperature
    model = ColorNet(config)
    same_head = ck["config"].get("n_classes") == len(classes)
    model.load_state_dict({k: v for k, v in ck["model"].items() if same_head or not k.startswith("classifier.")},
                          strict=False)
    return model.to(device), config, float(ck["mean"])


def make_optimizer(opt, model):
    kind = torch.optim.Adadelta if opt.optimizer == "adadelta" else torch.optim.Adam
    return kind(model.parameters(), lr=opt.learning_rate)


def resume(opt, ck, optimizer, log):
    """A fresh Progress, or ck's (optimizer state restored) when ck is a checkpoint of this optimizer's run."""
    if ck is None or "optimizer" not in ck or ck.get("opt", {}).get("optimizer") != opt.optimizer:
        return Progress()
    optimizer.load_state_dict(ck["optimizer"])
    log(f"resuming {opt.init_from} at iteration {ck['iter']}")
    return Progress(ck["iter"], ck["history"], ck.get("cpu_seconds", 0.0) if ck["iter"] else 0.0)


def get_batch(train_set, opt, it, per_epoch, rank, world, device):
    """This process's share of batch `it`: the epoch's permutation is seeded by seed + epoch, and each crop by
    (seed, epoch, index), so a resumed run sees exactly the batches the uninterrupted one would have."""
    epoch, pos = divmod(it, per_epoch)
    train_set.epoch = epoch
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(opt.seed + epoch))
    idx = order[pos * opt.batch_size:(pos + 1) * opt.batch_size].tolist()[rank::world]
    xs, ts, ls = zip(*(train_set[i] for i in idx))
    return torch.stack(xs).to(device), torch.stack(ts).to(device), torch.tensor(ls).to(device)


def train_step(net, optimizer, batch, opt, amp, it, classify=None):
    """Colour loss (+ 1/300 x classification cross-entropy with class subfolders), one optimizer step -> loss.
    classify: -loss classify's (soft_encoding table, rebalancing weight per ab bin)."""
    x, target, labels = batch
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        pred, logits = net(x)
        loss = color_loss(pred, target, opt.loss, classify)
        if logits is not None:
            loss = loss + F.cross_entropy(logits.float(), labels) / 300
    (value,) = agree(loss.item(), device=x.device)  # the mean over the processes: all stop on a NaN together
    check_loss(value, None, where=f"iteration {it + 1}",
               hint="lower -learning_rate (no checkpoint written for this iteration)")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return value


def save_checkpoint(opt, model, config, mean, classes, optimizer, progress, cpu_seconds):
    """cv/colornet_iter<N>.pt, written atomically: everything colorize.py needs and an exact resume needs."""
    path = os.path.join(opt.checkpoint_dir, f"colornet_iter{progress.it}.pt")
    try:
        checkpoint.save(path, "colorize", {
            "model": {k: v.cpu() for k, v in model.state_dict().items()}, "config": dataclasses.asdict(config),
            "mean": mean, "recombine": "lab", "classes": classes, "opt": dataclasses.asdict(opt),
            "optimizer": optimizer.state_dict(), "iter": progress.it, "history": progress.history,
            "source": "trained", "cpu_seconds": cpu_seconds})
    except OSError as e:  # a full disk, or the folder removed while training
        raise UserError(f"{path}: cannot write the checkpoint ({e.strerror or e})") from None
    return path


def main(opt: TrainOptions):
    device, rank, world = init_distributed(opt.gpu, "-gpu -1")  # under torchrun: gloo on CPU, nccl on GPU
    log = print if rank == 0 else (lambda *a, **k: None)
    check_options(opt, world)
    seed_everything(opt.seed)
    if rank == 0:
        checkpoint.remove_stale_temporaries(opt.checkpoint_dir)  # left by a kill -9 mid-save

    # data, model (fresh, resumed or fine-tuned), optimizer, and where the run stands
    train_set, val_files, classes = load_data(opt, log)
    ck = checkpoint.load(opt.init_from, "colorize") if opt.init_from else None
    model, config, mean = build_model(opt, ck, classes, device)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = make_optimizer(opt, model)
    progress = resume(opt, ck, optimizer, log)
    log(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters on {device}")
    classify = None
    if opt.loss == "classify":
        weights, p = rebalancing_weights(train_set, model.ab_bins.cpu(), opt.rebalance, seed=opt.seed)
        classify = soft_encoding(model.ab_bins), weights.to(device)
        log(f"-loss classify: {len(p)} ab bins, {int((p > 1e-4).sum())} seen in the training photos; rebalancing "
            f"lambda {opt.rebalance}: weights {weights.min():.2f} to {weights.max():.2f}")

    clock = Clock(opt.max_time, opt.max_cpu_time)  # the budgets count this process; cpu_seconds all the runs

    def save():  # process 0 writes the checkpoints
        if rank == 0:
            cpu = progress.cpu_before + clock.cpu()
            log(f"saved {save_checkpoint(opt, model, config, mean, classes, optimizer, progress, cpu)}")

    # the loop: a step, a loss line, the validation PSNR each epoch, a checkpoint every -save_every;
    # SIGINT/SIGTERM finish the step, save a resumable checkpoint and exit 130/143
    amp = opt.amp == 2 or (opt.amp == 1 and device.type == "cuda")
    if amp:
        log(f"mixed precision: bfloat16 autocast on {device.type}")
    per_epoch = max(1, len(train_set) // opt.batch_size)
    bar = tqdm(total=opt.max_iters, initial=progress.it, disable=rank != 0 or not sys.stderr.isatty(), unit="it")
    signalled = False
    with bar, StopOnSignal() as signal_stop:
        while progress.it < opt.max_iters:
            batch = get_batch(train_set, opt, progress.it, per_epoch, rank, world, device)
            loss = train_step(net, optimizer, batch, opt, amp, progress.it, classify)
            progress.it += 1
            it = progress.it
            progress.history["train_loss"].append(round(loss, 5))
            bar.update(1)
            if it % opt.print_every == 0:
                log(f"{it}/{opt.max_iters} (epoch {it / per_epoch:.2f}), train loss {loss:.4f}")
            out_of_time, signalled = agree(clock.out_of_time(), signal_stop.requested, device=device)  # all or none
            if signalled:
                break
            if val_files and rank == 0 and (it % (opt.eval_every or per_epoch) == 0 or it == opt.max_iters
                                            or out_of_time):
                psnr = validate(model, val_files, device, mean)
                progress.history["val_psnr"].append((it, round(psnr, 3)))
                log(f"iteration {it}: validation PSNR {psnr:.2f} dB")
            if it % opt.save_every == 0 and it < opt.max_iters and not out_of_time:
                save()
            if out_of_time:
                log(f"stopping after {clock.reason() or 'another process ran out of time'}")
                break
    log(f"trained {progress.it} iterations, {progress.cpu_before + clock.cpu():.0f} CPU seconds in all")
    save()
    path = os.path.join(opt.checkpoint_dir, f"colornet_iter{progress.it}.pt")
    close_distributed()
    signal_stop.exit_if_stopped(f"resume with -init_from {path}")
    if signalled:
        sys.exit(130)  # another process was signalled
    return path


if __name__ == "__main__":
    run(main, parse(TrainOptions, sys.argv[1:]))
