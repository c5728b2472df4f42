"""Train DenseCap, as train.lua: one image per iteration, Adam, val mAP every -save_checkpoint_every
iterations, a checkpoint only when val mAP improves (and the last state at the end, for resuming).

    python train.py -data_h5 data/VG-regions.h5 -data_json data/VG-regions-dicts.json -gpu 0 \
        -cnn_weights vgg16-397923af.pth -finetune_cnn_after 100000
    python train.py -checkpoint_start_from checkpoint_last.pt ...     # exact resume
    torchrun --nproc_per_node 2 train.py ...                          # DDP: each rank its own images
"""
import dataclasses
import math
import os
import sys

from common.cli import UserError, flag, options, parse, run


@options
class TrainOptions:
    """Train a DenseCap model (the train_opts.lua flags, plus the ones marked new)."""
    # model
    cnn: str = flag("vgg16", "new: vgg16 (the original) or tiny (4 conv blocks, for CPU demos/tests)",
                    choices=["vgg16", "tiny"])
    cnn_weights: str = flag("", "new: torchvision vgg16 state_dict (.pth) for the trunk and fc6/fc7; '' = random")
    fc_dim: int = flag(4096, "new: width of fc6/fc7 (VGG: 4096)", min=1)
    tiny_channels: int = flag(64, "new: channels of the tiny trunk", min=1)
    region_code_norm: int = flag(0, "new: 1 = LayerNorm on region codes before the language model (for "
                                    "trunks trained from scratch at high learning rates)")
    region_code_standardize: int = flag(0, "new: 1 = standardize each feature of the region codes (running "
                                           "mean and variance) before the language model")
    lm_input: str = flag("fc7", "new: what the language model reads: fc7 (the original) or roi (the 7x7 RoI "
                                "features through its own Linear, a path the box losses do not train)",
                         choices=["fc7", "roi"])
    anchor_scale: float = flag(1.0, "scale of the 12 anchors (LocalizationLayer's anchor_scale)")
    backend: str = flag("cudnn", "accepted for compatibility (PyTorch chooses its own kernels)")
    rpn_hidden_dim: int = flag(512, "accepted for compatibility: never read by the original either "
                                    "(the RPN uses -rpn_num_filters)")
    rpn_num_filters: int = flag(256, "channels of the RPN's 3x3 conv", min=1)
    sampler_batch_size: int = flag(256, "boxes sampled per image for training", min=1)
    rnn_size: int = flag(512, "LSTM hidden size", min=1)
    input_encoding_size: int = flag(512, "word and region encoding size", min=1)
    sampler_high_thresh: float = flag(0.7, "boxes with IoU above this are positives")
    sampler_low_thresh: float = flag(0.3, "boxes with IoU below this are negatives")
    train_remove_outbounds_boxes: int = flag(1, "1: ignore anchors that cross the image border when sampling")
    # loss weights
    mid_box_reg_weight: float = flag(0.05, "RPN box regression loss weight")
    mid_objectness_weight: float = flag(0.1, "RPN objectness loss weight")
    end_box_reg_weight: float = flag(0.1, "final box regression loss weight")
    end_objectness_weight: float = flag(0.1, "final objectness loss weight")
    captioning_weight: float = flag(1.0, "captioning loss weight")
    weight_decay: float = flag(1e-6, "L2 weight decay")
    box_reg_decay: float = flag(5e-5, "L2 pull of the RPN box offsets toward the anchors")
    # data
    data_h5: str = flag("data/VG-regions.h5", "HDF5 from preprocess.py")
    data_json: str = flag("data/VG-regions-dicts.json", "JSON from preprocess.py")
    proposal_regions_h5: str = flag("", "accepted for compatibility; external proposals are not supported")
    debug_max_train_images: int = flag(-1, "use only this many training images (-1 = all)")
    # optimization
    learning_rate: float = flag(1e-5, "Adam learning rate")
    optim_beta1: float = flag(0.9, "Adam beta1")
    optim_beta2: float = flag(0.999, "Adam beta2")
    optim_epsilon: float = flag(1e-8, "Adam epsilon")
    drop_prob: float = flag(0.5, "dropout in the recognition network and language model")
    max_iters: int = flag(-1, "stop after this many iterations (-1 = never)")
    checkpoint_start_from: str = flag("", "start from this checkpoint (.pt resumes exactly; .t7 loads weights)")
    finetune_cnn_after: int = flag(-1, "start fine-tuning conv3_1 and up after this iteration (-1 = never)")
    val_images_use: int = flag(1000, "validation images used for val mAP (-1 = all)")
    val_metric: str = flag("map", "new: map (METEOR, needs Java) or detmap (localization only) picks the best "
                                  "checkpoint", choices=["map", "detmap"])
    # checkpointing and logging
    save_checkpoint_every: int = flag(10000, "evaluate on val (and maybe save) every this many iterations", min=1)
    checkpoint_path: str = flag("checkpoint.pt", "where the best model goes; the last state goes to "
                                                 "<name>_last.pt")
    test_rpn_nms_thresh: float = flag(0.7, "RPN NMS threshold for validation")
    test_final_nms_thresh: float = flag(0.3, "final NMS threshold for validation")
    test_num_proposals: int = flag(1000, "proposals per image for validation", min=1)
    progress_dump_every: int = flag(100, "accepted for compatibility (the tqdm bar shows progress)")
    losses_log_every: int = flag(10, "print the losses every this many iterations", min=1)
    id: str = flag("", "an id for this run, stored in the checkpoint")
    seed: int = flag(123, "random seed")
    gpu: int = flag(0, "GPU to use; -1 = CPU")
    timing: int = flag(0, "1: print seconds per iteration with the losses")
    clip_final_boxes: int = flag(1, "1: clip the final boxes to the image at test time")
    eval_first_iteration: int = flag(0, "1: evaluate on val before training")
    max_time: float = flag(0, "new: stop (evaluate and save) after this many wall-clock seconds; 0 = no limit", min=0)
    max_cpu_time: float = flag(0, "new: stop (evaluate and save) after this many CPU seconds of this process; "
                                  "0 = no limit", min=0)


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from common.checkpoint import remove_stale_temporaries
from common.device import close_distributed, init_distributed, rng_state, seed_everything, set_rng_state
from common.signals import StopOnSignal
from common.training import Clock, agree, check_loss
from densecap.checkpoints import load_model, save_model
from densecap.evaluation import eval_split
from densecap.loader import DataLoader
from densecap.model import DenseCapModel, ModelConfig, load_torchvision_vgg16


def build_model(opt, loader, log):
    """A fresh model, or the one in -checkpoint_start_from (its architecture wins over the flags)."""
    ckpt = None
    if opt.checkpoint_start_from:
        model, idx_to_token, ckpt = load_model(opt.checkpoint_start_from)
        if idx_to_token != loader.idx_to_token:
            raise UserError(f"{opt.checkpoint_start_from}: its vocabulary differs from {opt.data_json}")
        log(f"loaded {opt.checkpoint_start_from}")
    else:
        if opt.cnn_weights and (opt.cnn != "vgg16" or opt.fc_dim != 4096):
            raise UserError("-cnn_weights needs -cnn vgg16 -fc_dim 4096")
        if opt.cnn_weights and not os.path.isfile(opt.cnn_weights):
            raise UserError(f"{opt.cnn_weights}: no such file (-cnn_weights)")
        model = DenseCapModel(ModelConfig.from_options(opt, vocab_size=loader.vocab_size,
                                                          seq_length=loader.seq_length))
        if opt.cnn_weights:
            load_torchvision_vgg16(model, torch.load(opt.cnn_weights, map_location="cpu", weights_only=True))
        elif opt.cnn == "vgg16":
            log("warning: VGG-16 from random weights (pass -cnn_weights vgg16-397923af.pth for ImageNet ones)")
    return model, ckpt


def make_optimizer(model, opt):
    cnn = list(model.conv_net2.parameters())
    ids = {id(p) for p in cnn} | {id(p) for p in model.conv_net1.parameters()}
    rest = [p for p in model.parameters() if id(p) not in ids]
    # two groups as train.lua's two Adam states; the CNN group only gets gradients once fine-tuning starts
    return torch.optim.Adam([{"params": rest}, {"params": cnn}], lr=opt.learning_rate,
                            betas=(opt.optim_beta1, opt.optim_beta2), eps=opt.optim_epsilon,
                            weight_decay=opt.weight_decay, foreach=True)


@dataclasses.dataclass
class RunState:
    """What a run carries from iteration to iteration (and a checkpoint carries to the resumed run)."""
    iter: int = 0
    best_val_score: float = -math.inf
    history: dict = dataclasses.field(default_factory=lambda: {"losses": {}, "val": {}})


def main(opt: TrainOptions):
    device, rank, world = init_distributed(opt.gpu, "-gpu -1")  # under torchrun: gloo on CPU, nccl on GPU
    master = rank == 0
    log = print if master else (lambda *a, **k: None)
    seed_everything(opt.seed + rank)

    if master:  # what a kill -9 during a checkpoint write left behind
        remove_stale_temporaries(os.path.dirname(os.path.abspath(opt.checkpoint_path)))
    loader = load_data(opt, log)
    model, ckpt = build_model(opt, loader, log)
    model.to(device).train()
    optimizer = make_optimizer(model, opt)
    state = resume(ckpt, optimizer, loader, log)
    net = distribute(model, loader, device, rank, world)

    def validate():  # rank 0 alone; the others wait for it in the next backward's all-reduce
        if master:
            validate_and_keep_best(opt, model, optimizer, loader, state, log)

    if opt.eval_first_iteration:
        validate()
    last = os.path.splitext(opt.checkpoint_path)[0] + "_last.pt"
    with StopOnSignal() as signals:  # Ctrl-C / SIGTERM: finish the step, save the last state, exit 130/143
        stop = train_loop(opt, net, optimizer, loader, state, device, world, master, log, validate, signals)
        if stop in ("done", "stopped") and master:  # the last state, for an exact resume
            save_checkpoint(last, opt, model, optimizer, loader, state, log)
    if world > 1:
        check_ranks_in_sync(model, world, device, state.iter, log)
    close_distributed()
    signals.exit_if_stopped(f"checkpoint saved to {last}; resume with -checkpoint_start_from {last}")
    return {"iter": state.iter, "best_val_score": state.best_val_score, "history": state.history,
            "stopped": stop}


def load_data(opt, log):
    loader = DataLoader(opt.data_h5, opt.data_json, opt.debug_max_train_images)
    log(f"{len(loader.split_ix['train'])} train / {len(loader.split_ix['val'])} val images, "
        f"vocabulary {loader.vocab_size}")
    return loader


def resume(ckpt, optimizer, loader, log):
    """A fresh RunState, or the one of a train.py checkpoint with its optimizer, loader position and
    random streams restored (exact resume; a .t7 or a weights-only checkpoint starts at iteration 0)."""
    if ckpt is None or "optimizer" not in ckpt:
        return RunState()
    optimizer.load_state_dict(ckpt["optimizer"])
    loader.set_state(ckpt["loader"])
    set_rng_state(ckpt["rng"])
    log(f"resuming at iteration {ckpt['iter']}")
    return RunState(ckpt["iter"], ckpt["best_val_score"], ckpt["history"])


def distribute(model, loader, device, rank, world):
    """Under torchrun, the model wrapped in DDP and the loader moved to this rank's first image."""
    if world == 1:
        return model
    # DDP starts every rank from rank 0's weights and averages the gradients in backward; parameters
    # can go unused on one rank (the language model when an image has no positive box, the trunk
    # before -finetune_cnn_after). Rank r reads train images r, r + world, r + 2 world, ...
    net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None,
                                  find_unused_parameters=True)
    loader.iterators["train"] = (loader.iterators["train"] + rank) % len(loader.split_ix["train"])
    return net


def save_checkpoint(path, opt, model, optimizer, loader, state, log, **extra):
    save_model(path, model, loader.idx_to_token, opt=dataclasses.asdict(opt), iter=state.iter,
               best_val_score=state.best_val_score, history=state.history, optimizer=optimizer.state_dict(),
               loader=loader.state(), rng=rng_state(), **extra)
    log(f"saved {path}")


def validate_and_keep_best(opt, model, optimizer, loader, state, log):
    """Val mAP (or detmap) on -val_images_use images; a checkpoint at -checkpoint_path only if it improved."""
    res = eval_split(model, loader, "val", opt.val_images_use, opt.test_rpn_nms_thresh,
                     opt.test_final_nms_thresh, opt.test_num_proposals,
                     meteor=None if opt.val_metric == "map" else False, progress=sys.stderr.isatty(),
                     clip_final_boxes=bool(opt.clip_final_boxes))
    state.history["val"][state.iter] = val = {k: res[k] for k in ("map", "detmap") if k in res}
    log(f"iter {state.iter}: val " + ", ".join(f"{k} {v:.2f}" for k, v in val.items()))
    if res[opt.val_metric] > state.best_val_score:
        state.best_val_score = res[opt.val_metric]
        save_checkpoint(opt.checkpoint_path, opt, model, optimizer, loader, state, log, val=res)


def compute_gradients(net, optimizer, loader, opt, it, device, world):
    """This rank's next training image forward and backward -> (its loss terms, the total loss)."""
    (image, boxes, labels, info), _ = loader.next("train")
    if world > 1:  # skip the other ranks' images
        for _ in range(world - 1):
            loader.next("train")
    finetune = opt.finetune_cnn_after >= 0 and it >= opt.finetune_cnn_after
    losses = net(image.to(device), boxes.to(device), labels.to(device), finetune_cnn=finetune)
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    return losses, loss.item()


def train_loop(opt, net, optimizer, loader, state, device, world, master, log, validate, signals=None):
    """One image per iteration, in order, until -max_iters, -max_time or -max_cpu_time ("done"). A loss (the
    mean over the ranks) that is not finite or exceeds 100x the first stops every rank with one line naming
    its terms, as train.lua, before the step. Calls validate() every -save_checkpoint_every iterations and
    at the end; after SIGINT/SIGTERM (`signals`) on any rank, every rank stops after the step ("stopped")."""
    clock, first_loss = Clock(opt.max_time, opt.max_cpu_time), None
    bar = tqdm(total=opt.max_iters if opt.max_iters > 0 else None, initial=state.iter, unit="it",
               disable=not master or not sys.stderr.isatty(), dynamic_ncols=True)
    try:
        while True:
            losses, value = compute_gradients(net, optimizer, loader, opt, state.iter, device, world)
            last = opt.max_iters > 0 and state.iter + 1 >= opt.max_iters
            # one all-reduce: the loss averaged over the ranks, and whether any is done or signalled
            mean, done, stopped = agree(value, last or clock.out_of_time(), signals is not None and signals.requested,
                                        device=device)
            check_loss(mean, first_loss, explode=100, where=f"iteration {state.iter + 1}", terms=losses,
                       hint="no step was taken for it; try a lower -learning_rate")
            optimizer.step()
            state.iter += 1
            bar.update()
            first_loss = first_loss or mean
            if state.iter % opt.losses_log_every == 0:
                state.history["losses"][state.iter] = {k: v.item() for k, v in losses.items()}
                msg = (f"iter {state.iter}: loss {value:.3f} ("
                       + ", ".join(f"{k} {v.item():.3f}" for k, v in losses.items()) + ")")
                if opt.timing:
                    msg += f" {clock.wall() / state.iter:.3f}s/it"
                bar.write(msg) if bar.disable is False else log(msg)
            if state.iter % opt.save_checkpoint_every == 0 or done:
                validate()
            if done:
                if clock.reason():
                    log(f"stopping after {clock.reason()} at iteration {state.iter}")
                return "done"
            if stopped:
                return "stopped"
    finally:
        bar.close()


def check_ranks_in_sync(model, world, device, it, log):
    """Every rank applied the same averaged gradients: their weights must agree."""
    total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().view(1)
    sums = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(world)]
    dist.all_gather(sums, total)
    if max(s.item() for s in sums) - min(s.item() for s in sums) > 1e-6 * abs(total.item()) + 1e-9:
        raise RuntimeError(f"ranks diverged: parameter sums {[s.item() for s in sums]}")
    log(f"{world} ranks in sync after {it} iterations")


if __name__ == "__main__":
    run(main, parse(TrainOptions))
