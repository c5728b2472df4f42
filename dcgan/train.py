"""Train a DCGAN, as dcgan.torch's main.lua (options as environment variables or flags).

    DATA_ROOT=myimages dataset=folder python train.py          # the original's style
    python train.py -dataset mnist -DATA_ROOT ../../shared/data/mnist_t10k -fineSize 32 -loadSize 32
    torchrun --nproc_per_node 2 train.py ...                   # DistributedDataParallel, batch split over ranks

Checkpoints: <checkpoints_dir>/<name>_<epoch>_net_G.pt and _net_D.pt after each epoch (atomic);
`resume=<..._net_G.pt>` continues exactly. A fixed-noise sample grid replaces the display server.
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
from torchvision.utils import save_image
from tqdm import tqdm

from common import checkpoint
from common.cli import UserError
from common.device import close_distributed, init_distributed, rng_state, seed_everything, set_rng_state
from dcgan.data import make_loader
from dcgan.engine import autocast, train_step
from dcgan.model import SIZES, GANConfig, batch_statistics, build, make_noise
from dcgan.options import TrainOptions, cli


def checkpoint_paths(opt, epoch):
    base = os.path.join(opt.checkpoints_dir, f"{opt.name}_{epoch}_net_")
    return base + "G.pt", base + "D.pt"


def load_resume(path):
    """The G and D checkpoints of one epoch; a missing or mismatched D is one clear error."""
    if not path.endswith("_net_G.pt"):
        raise UserError(f"resume={path}: give the generator checkpoint, <name>_<epoch>_net_G.pt")
    g = checkpoint.load(path, "dcgan_G")
    d_path = path[: -len("G.pt")] + "D.pt"
    d = checkpoint.load(d_path, "dcgan_D")
    if "optimizer" not in g or g.get("epoch") != d.get("epoch"):
        raise UserError(f"resume={path}: not a training checkpoint pair (G epoch {g.get('epoch')}, "
                        f"D epoch {d.get('epoch')}); resume from files written by train.py")
    return g, d


def main(opt: TrainOptions):
    if opt.fineSize not in SIZES:
        raise UserError(f"fineSize={opt.fineSize}: must be one of {', '.join(map(str, SIZES))}")
    device, rank, world = init_distributed(opt.gpu - 1)  # gpu is 1-based, 0 = CPU
    master = rank == 0
    log = print if master else (lambda *a, **k: None)
    if opt.batchSize % world:
        raise UserError(f"batchSize={opt.batchSize} does not split over {world} processes")
    per_rank = dataclasses.replace(opt, batchSize=opt.batchSize // world)

    resumed = load_resume(opt.resume) if opt.resume else None
    seed = resumed[0]["seed"] if resumed else (opt.seed or int.from_bytes(os.urandom(4), "little") or 1)
    log(f"seed: {seed}")
    seed_everything(seed)

    # ---- data
    loader, batches, nc, n_images = make_loader(per_rank, rank)
    log(f"{opt.dataset}: {n_images} images from {opt.DATA_ROOT}, {nc} channel(s); an epoch is {batches} "
        f"random batches of {opt.batchSize}")

    # ---- model
    cfg = GANConfig(nz=opt.nz, ngf=opt.ngf, ndf=opt.ndf, nc=nc, fineSize=opt.fineSize)
    if resumed:
        cfg = GANConfig(**resumed[0]["config"])
        if (cfg.nc, cfg.fineSize) != (nc, opt.fineSize):
            raise UserError(f"resume={opt.resume}: it was trained on {cfg.nc}-channel {cfg.fineSize}px images, "
                            f"this data gives {nc}-channel {opt.fineSize}px; use the same dataset and fineSize")
    G, D = build(cfg)
    fixed_noise = make_noise((opt.batchSize, cfg.nz, 1, 1), opt.noise)
    optG = torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    start = 1
    if resumed:
        g, d = resumed
        G.load_state_dict(g["model"])
        D.load_state_dict(d["model"])
        optG.load_state_dict(g["optimizer"])
        optD.load_state_dict(d["optimizer"])
        fixed_noise, start = g["fixed_noise"], g["epoch"] + 1
        set_rng_state(g["rng"][rank] if rank < len(g["rng"]) else None)
        log(f"resuming {opt.resume} at epoch {start}")
    elif rank:
        seed_everything(seed + 1000 * rank)  # each rank draws its own batches and noise
    G.to(device, memory_format=torch.channels_last)  # faster convolutions on CPU (oneDNN) and GPU
    D.to(device, memory_format=torch.channels_last)
    fixed_noise = fixed_noise.to(device)
    log(f"generator: {sum(p.numel() for p in G.parameters()):,} parameters; "
        f"discriminator: {sum(p.numel() for p in D.parameters()):,}")
    if world > 1:
        log(f"DistributedDataParallel over {world} processes, {opt.batchSize // world} images each per batch")
    Gt = torch.nn.parallel.DistributedDataParallel(G) if world > 1 else G
    Dsync = torch.nn.parallel.DistributedDataParallel(D) if world > 1 else None
    precision = autocast(device, bool(opt.amp))
    if not isinstance(precision, type(autocast(device, False))):
        log(f"mixed precision: bfloat16 autocast on {device.type}")

    def save(epoch):
        rngs = [rng_state()]
        if world > 1:  # every rank's RNG, so that each draws the same batches after a resume
            rngs = [None] * world
            dist.all_gather_object(rngs, rng_state())
        if not master:
            return None
        p_g, p_d = checkpoint_paths(opt, epoch)
        common = {"config": dataclasses.asdict(cfg), "opt": dataclasses.asdict(opt), "epoch": epoch}
        checkpoint.save(p_d, "dcgan_D", dict(common, model=_cpu(D.state_dict()), optimizer=optD.state_dict()))
        checkpoint.save(p_g, "dcgan_G", dict(common, model=_cpu(G.state_dict()), optimizer=optG.state_dict(),
                                             rng=rngs, seed=seed, fixed_noise=fixed_noise.cpu()))
        log(f"saved {p_g} and {p_d}")
        return p_g

    def show(step):
        if master and opt.display:
            with torch.no_grad(), batch_statistics(G), precision:
                x = G(fixed_noise).float()
            save_image((x + 1) / 2, os.path.join(opt.checkpoints_dir, f"{opt.name}_samples.png"), nrow=8)

    # ---- the loop; Ctrl-C or SIGTERM: finish the iteration, save, stop (a second Ctrl-C quits at once)
    stop = []

    def on_signal(signum, frame):
        if stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.append(signum)
        log("\nstopping: finishing this iteration and saving a checkpoint")

    main_thread = threading.current_thread() is threading.main_thread()
    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    os.makedirs(opt.checkpoints_dir, exist_ok=True)
    t_wall, t_cpu = time.time(), time.process_time()
    total, step, last = (opt.niter - start + 1) * batches, 0, None
    bar = tqdm(total=max(total, 0), disable=not master or not sys.stderr.isatty(), unit="batch", dynamic_ncols=True)
    try:
        for epoch in range(start, opt.niter + 1):
            t_data = time.time()
            out_of_time = False
            for i, real in enumerate(loader, 1):
                data_time, t0 = time.time() - t_data, time.time()
                real = real.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                noise = make_noise((real.size(0), cfg.nz, 1, 1), opt.noise, device=device)
                errD, errG = train_step(Gt, D, optG, optD, real, noise, precision, Dsync)
                errD, errG = errD.item(), errG.item()
                step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, Err_D=f"{errD:.3f}", Err_G=f"{errG:.3f}")
                if not (math.isfinite(errD) and math.isfinite(errG)):
                    raise UserError(f"loss is not finite at epoch {epoch}, iteration {i} (Err_D {errD}, Err_G {errG}); "
                                    f"checkpoints written so far are kept; try a lower lr")
                if opt.print_every > 0 and step % opt.print_every == 0:
                    msg = (f"Epoch: [{epoch}][{i:8d} / {batches:8d}]\t Time: {time.time() - t0:.3f}  "
                           f"DataTime: {data_time:.3f}  Err_G: {errG:.4f}  Err_D: {errD:.4f}")
                    bar.write(msg) if not bar.disable else log(msg)
                if opt.display_every > 0 and step % opt.display_every == 0:
                    show(step)
                out_of_time = (bool(stop) or (opt.max_time > 0 and time.time() - t_wall >= opt.max_time)
                               or (opt.max_cpu_time > 0 and time.process_time() - t_cpu >= opt.max_cpu_time))
                if world > 1:
                    flag = torch.tensor([float(out_of_time)], device=device)
                    dist.all_reduce(flag)
                    out_of_time = flag.item() > 0
                t_data = time.time()
                if out_of_time:
                    break
            if out_of_time:
                log(f"{'stopped' if stop else 'time budget reached'} in epoch {epoch} after {step} iterations "
                    f"({time.time() - t_wall:.0f}s wall, {time.process_time() - t_cpu:.0f}s CPU); saving")
                last = save(epoch) or last
                break
            if epoch % opt.epoch_save_modulo == 0 or epoch == opt.niter:
                last = save(epoch) or last
        show(step)
    finally:
        bar.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        close_distributed()
    return last


def _cpu(state):
    return {k: v.detach().cpu() for k, v in state.items()}


if __name__ == "__main__":
    cli(main, TrainOptions)
