"""Train a DCGAN, as dcgan.torch's main.lua (options as environment variables or flags).

    DATA_ROOT=myimages dataset=folder python train.py          # the original's style
    python train.py -dataset mnist -DATA_ROOT ../../shared/data/mnist_t10k -fineSize 32 -loadSize 32
    torchrun --nproc_per_node 2 train.py ...                   # DistributedDataParallel, batch split over ranks

Checkpoints: <checkpoints_dir>/<name>_<epoch>_net_G.pt and _net_D.pt after each epoch (atomic);
`resume=<..._net_G.pt>` continues exactly. A fixed-noise sample grid replaces the display server.
"""
import contextlib
import dataclasses
import os
import sys
import time

import torch
import torch.distributed as dist
from torchvision.utils import save_image
from tqdm import tqdm

from common import checkpoint
from common.cli import UserError
from common.device import close_distributed, init_distributed, rng_state, seed_everything, set_rng_state
from common.signals import StopOnSignal
from common.training import Clock, agree, check_loss
from dcgan.checkpoints import RunLock, earlier_checkpoints
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
    """A run: where it trains and with what seed, the data, the nets (resumed if asked), then the loop:
    train (epochs and their batches, logging, saving) -> engine.train_step (one D and G update)."""
    run = start_run(opt)
    with claim_checkpoints(opt, run):  # this run alone writes <name>_* checkpoints there until it ends
        loader, batches, nc = build_data(opt, run)
        gan = build_nets(opt, run, nc)
        start = resume(opt, run, gan)
        place_nets(opt, run, gan)
        return train(opt, run, gan, loader, batches, start)


@dataclasses.dataclass
class Run:
    """This process's share of a run: its device, its rank among `world` processes, the seed, and the
    checkpoint pair being resumed (None for a fresh run)."""
    device: torch.device
    rank: int
    world: int
    seed: int = 0
    resumed: tuple = None
    precision: object = None  # the autocast context of the forward passes
    steps: int = 0  # iterations done in this process

    @property
    def master(self):
        return self.rank == 0

    def log(self, *args, **kw):
        if self.master:
            print(*args, **kw)


@dataclasses.dataclass
class GAN:
    """The two nets, their optimizers and the fixed noise of the sample grids. `Gt` is G as trained (a DDP
    wrapper under torchrun) and `Dsync` D's DDP wrapper, which only averages D's gradients."""
    cfg: GANConfig
    G: torch.nn.Module
    D: torch.nn.Module
    optG: torch.optim.Optimizer
    optD: torch.optim.Optimizer
    fixed_noise: torch.Tensor
    Gt: torch.nn.Module = None
    Dsync: torch.nn.Module = None


def start_run(opt):
    """Check the options that need no data, join the process group (torchrun), seed (a resume's seed wins)."""
    if opt.fineSize not in SIZES:
        raise UserError(f"fineSize={opt.fineSize}: must be one of {', '.join(map(str, SIZES))}")
    device, rank, world = init_distributed(opt.gpu - 1, "gpu=0")  # gpu is 1-based, 0 = CPU
    run = Run(device, rank, world)
    if opt.batchSize % world:
        raise UserError(f"batchSize={opt.batchSize} does not split over {world} processes")
    run.resumed = load_resume(opt.resume) if opt.resume else None
    run.seed = run.resumed[0]["seed"] if run.resumed else (opt.seed or int.from_bytes(os.urandom(4), "little") or 1)
    run.log(f"seed: {run.seed}")
    seed_everything(run.seed)
    return run


@contextlib.contextmanager
def claim_checkpoints(opt, run):
    """Hold <checkpoints_dir>/<name>.lock while the run lasts (a second run into the same folder and name
    stops with one line), and refuse a fresh run (no resume=) over an earlier run's checkpoints."""
    lock, problem = None, None
    if run.master:
        try:
            lock = RunLock(opt.checkpoints_dir, opt.name).acquire()
            earlier = earlier_checkpoints(opt.checkpoints_dir, opt.name)
            if earlier and not opt.resume:
                last = earlier[-1][1]
                raise UserError(f"checkpoints_dir={opt.checkpoints_dir} already holds checkpoints of a run named "
                                f"{opt.name} (epochs {earlier[0][0]}-{earlier[-1][0]}); continue it with "
                                f"resume={last}, or pass another name= (a new run would overwrite them)")
        except UserError as e:
            problem = e
    if run.world > 1:  # every rank stops if rank 0 cannot claim the folder
        said = [str(problem) if problem else None]
        dist.broadcast_object_list(said)
        problem = problem or (UserError(said[0]) if said[0] else None)
    try:
        if problem:
            raise problem
        yield
    finally:
        if lock:
            lock.release()


def build_data(opt, run):
    """-> (loader of this rank's share of each batch, batches per epoch, image channels)."""
    per_rank = dataclasses.replace(opt, batchSize=opt.batchSize // run.world)
    loader, batches, nc, n_images = make_loader(per_rank, run.rank)
    run.log(f"{opt.dataset}: {n_images} images from {opt.DATA_ROOT}, {nc} channel(s); an epoch is {batches} "
            f"random batches of {opt.batchSize}")
    return loader, batches, nc


def build_nets(opt, run, nc):
    """G and D initialised as main.lua, Adam for each, the fixed noise; a resume's config replaces opt's."""
    cfg = GANConfig(nz=opt.nz, ngf=opt.ngf, ndf=opt.ndf, nc=nc, fineSize=opt.fineSize)
    if run.resumed:
        cfg = GANConfig(**run.resumed[0]["config"])
        if (cfg.nc, cfg.fineSize) != (nc, opt.fineSize):
            raise UserError(f"resume={opt.resume}: it was trained on {cfg.nc}-channel {cfg.fineSize}px images, "
                            f"this data gives {nc}-channel {opt.fineSize}px; use the same dataset and fineSize")
        imposed = [k for k in ("nz", "ngf", "ndf") if getattr(cfg, k) != getattr(opt, k)]
        if imposed:  # the nets are the checkpoint's: say so rather than ignore the options silently
            run.log(f"note: resume={opt.resume} imposes its nets' {', '.join(f'{k}={getattr(cfg, k)}' for k in imposed)}"
                    f" (not {', '.join(f'{k}={getattr(opt, k)}' for k in imposed)})")
    G, D = build(cfg)
    fixed_noise = make_noise((opt.batchSize, cfg.nz, 1, 1), opt.noise)
    optG = torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    return GAN(cfg, G, D, optG, optD, fixed_noise)


def resume(opt, run, gan):
    """Restore weights, Adam state, fixed noise and this rank's RNG from the checkpoint -> (epoch, batches of it
    already done): a checkpoint written in mid-epoch (a signal, a time budget) continues at its next batch."""
    if not run.resumed:
        if run.rank:
            seed_everything(run.seed + 1000 * run.rank)  # each rank draws its own noise
        return 1, 0
    g, d = run.resumed
    gan.G.load_state_dict(g["model"])
    gan.D.load_state_dict(d["model"])
    gan.optG.load_state_dict(g["optimizer"])
    gan.optD.load_state_dict(d["optimizer"])
    gan.fixed_noise = g["fixed_noise"]
    set_rng_state(g["rng"][run.rank] if run.rank < len(g["rng"]) else None)
    done, of = g.get("batch"), g.get("batches")  # absent in checkpoints of whole epochs written before
    if done is not None and done < of:
        run.log(f"resuming {opt.resume} in epoch {g['epoch']} after batch {done} of {of}")
        return g["epoch"], done
    run.log(f"resuming {opt.resume} at epoch {g['epoch'] + 1}")
    return g["epoch"] + 1, 0


def place_nets(opt, run, gan):
    """Move the nets to the device (channels-last), wrap them for DDP, pick the precision."""
    gan.G.to(run.device, memory_format=torch.channels_last)  # faster convolutions on CPU (oneDNN) and GPU
    gan.D.to(run.device, memory_format=torch.channels_last)
    gan.fixed_noise = gan.fixed_noise.to(run.device)
    run.log(f"generator: {sum(p.numel() for p in gan.G.parameters()):,} parameters; "
            f"discriminator: {sum(p.numel() for p in gan.D.parameters()):,}")
    if run.world > 1:
        run.log(f"DistributedDataParallel over {run.world} processes, {opt.batchSize // run.world} images "
                f"each per batch")
    gan.Gt = torch.nn.parallel.DistributedDataParallel(gan.G) if run.world > 1 else gan.G
    gan.Dsync = torch.nn.parallel.DistributedDataParallel(gan.D) if run.world > 1 else None
    run.precision = autocast(run.device, bool(opt.amp))
    if not isinstance(run.precision, type(autocast(run.device, False))):
        run.log(f"mixed precision: bfloat16 autocast on {run.device.type}")


def train(opt, run, gan, loader, batches, start):
    """Epochs from `start` (epoch, batches of it done) to niter, D-then-G steps logged as main.lua, saving each
    epoch_save_modulo; a signal or the time budget saves in mid-epoch and stops (a signal then exits 130/143).
    -> the last G checkpoint written."""
    epoch0, skip = start[0], min(start[1], batches)
    if run.master:
        removed = checkpoint.remove_stale_temporaries(opt.checkpoints_dir)  # left by a kill -9 mid-save
        if removed:
            run.log(f"removed {removed} unfinished checkpoint temporaries (.tmp-*.pt) of an interrupted save")
    clock, last, stopped = Clock(opt.max_time, opt.max_cpu_time), None, False
    bar = tqdm(total=max((opt.niter - epoch0 + 1) * batches - skip, 0), disable=not run.master or not sys.stderr.isatty(),
               unit="batch", dynamic_ncols=True)
    with StopOnSignal() as stop:  # SIGINT/SIGTERM: finish the iteration, save, exit 130/143
        try:
            for epoch in range(epoch0, opt.niter + 1):
                loader.sampler.set_epoch(epoch_seed(run, epoch), skip * loader.batch_size)
                t_data, done = time.time(), skip
                for done, real in enumerate(loader, skip + 1):
                    data_time, t0 = time.time() - t_data, time.time()
                    real = real.to(run.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                    noise = make_noise((real.size(0), gan.cfg.nz, 1, 1), opt.noise, device=run.device)
                    errD, errG = train_step(gan.Gt, gan.D, gan.optG, gan.optD, real, noise, run.precision, gan.Dsync)
                    # under torchrun: the losses averaged over the ranks, and every rank stops at the same iteration
                    errD, errG, stopped = agree(errD.item(), errG.item(), stop.requested or clock.out_of_time(),
                                                device=run.device)
                    run.steps += 1
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, Err_D=f"{errD:.3f}", Err_G=f"{errG:.3f}")
                    check_loss(errD + errG, None, where=f"epoch {epoch}, iteration {done}",
                               terms={"Err_D": errD, "Err_G": errG}, hint="try a lower lr")
                    if opt.print_every > 0 and run.steps % opt.print_every == 0:
                        msg = (f"Epoch: [{epoch}][{done:8d} / {batches:8d}]\t Time: {time.time() - t0:.3f}  "
                               f"DataTime: {data_time:.3f}  Err_G: {errG:.4f}  Err_D: {errD:.4f}")
                        bar.write(msg) if not bar.disable else run.log(msg)
                    if opt.display_every > 0 and run.steps % opt.display_every == 0:
                        show(opt, run, gan)
                    t_data = time.time()
                    if stopped:
                        break
                skip = 0
                if stopped:  # a signal or the time budget
                    run.log(f"{'stopped' if stop.requested else 'time budget reached'} in epoch {epoch} after "
                            f"{run.steps} iterations ({clock.wall():.0f}s wall, {clock.cpu():.0f}s CPU); saving "
                            f"(batch {done} of {batches})")
                    last = save(opt, run, gan, epoch, done, batches) or last
                    break
                done = batches
                if epoch % opt.epoch_save_modulo == 0 or epoch == opt.niter:
                    last = save(opt, run, gan, epoch, done, batches) or last
            show(opt, run, gan)
        finally:
            bar.close()
            close_distributed()
    stop.exit_if_stopped(f"continue exactly with resume={last}" if last else "")
    return last


def epoch_seed(run, epoch):
    """The seed of an epoch's draws (which images, their crops and flips) on this rank."""
    return (run.seed * 1_000_003 + epoch * 1009 + run.rank) % 2**62


def save(opt, run, gan, epoch, done, batches):
    """Write <name>_<epoch>_net_G.pt and _net_D.pt (atomic): weights, Adam, where in the epoch it stands (`batch`
    of `batches`) and every rank's RNG, so a resume continues exactly -> G's path, on rank 0."""
    rngs = [rng_state()]
    if run.world > 1:  # every rank's RNG, so that each draws the same noise after a resume
        rngs = [None] * run.world
        dist.all_gather_object(rngs, rng_state())
    if not run.master:
        return None
    p_g, p_d = checkpoint_paths(opt, epoch)
    common = {"config": dataclasses.asdict(gan.cfg), "opt": dataclasses.asdict(opt), "epoch": epoch,
              "batch": done, "batches": batches}
    checkpoint.save(p_d, "dcgan_D", dict(common, model=_cpu(gan.D.state_dict()), optimizer=gan.optD.state_dict()))
    checkpoint.save(p_g, "dcgan_G", dict(common, model=_cpu(gan.G.state_dict()), optimizer=gan.optG.state_dict(),
                                         rng=rngs, seed=run.seed, fixed_noise=gan.fixed_noise.cpu()))
    run.log(f"saved {p_g} and {p_d}")
    return p_g


def show(opt, run, gan):
    """The fixed-noise sample grid <checkpoints_dir>/<name>_samples.png (instead of the display server)."""
    if run.master and opt.display:
        with torch.no_grad(), batch_statistics(gan.G), run.precision:
            x = gan.G(gan.fixed_noise).float()
        save_image((x + 1) / 2, os.path.join(opt.checkpoints_dir, f"{opt.name}_samples.png"), nrow=8)


def _cpu(state):
    return {k: v.detach().cpu() for k, v in state.items()}


if __name__ == "__main__":
    cli(main, TrainOptions)
