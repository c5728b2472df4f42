"""Train an image captioning model, as neuraltalk2's train.lua (plus the modern repos' attention model,
scheduled sampling and self-critical training).

    python neuraltalk/train.py -input_json talk.json -input_h5 talk.h5 -checkpoint_path cv -id 1
    python neuraltalk/train.py ... -caption_model topdown -language_eval 1
    python neuraltalk/train.py ... -start_from cv -id 1 -self_critical_after 0   # resume / fine-tune with SCST
    torchrun --nproc_per_node 2 neuraltalk/train.py ...                        # DistributedDataParallel

Writes, every -save_checkpoint_every iterations, `model_id<ID>.pt` (the latest state, for -start_from),
`model_id<ID>-best.pt` (best CIDEr with -language_eval 1, else lowest validation loss) and
`model_id<ID>.json` (options, loss history, validation predictions and scores, as neuraltalk2).
"""
import dataclasses
import math
import os
import shlex
import sys

from common.cli import UserError, flag, options, parse, run
from neuraltalk.choices import ALIASES, MODELS

KIND = "neuraltalk"


@options
class TrainOptions:
    """Train an image captioning model (neuraltalk2 / ImageCaptioning.pytorch)."""
    # data
    input_h5: str = flag("coco/data.h5", "path to the h5 file with labels and image data (prepro.py)")
    input_json: str = flag("coco/data.json", "path to the json file with the vocab and image info (prepro.py)")
    start_from: str = flag("", "resume from this folder's model_id<ID>.pt (or a .pt file): weights, optimizer, "
                               "iteration and histories")
    # model
    caption_model: str = flag("show_tell", "show_tell (neuraltalk2) or topdown (attention; alias updown)",
                              choices=list(MODELS) + list(ALIASES))
    rnn_size: int = flag(512, "size of the rnn in number of hidden nodes in each layer", min=1)
    input_encoding_size: int = flag(512, "the encoding size of each token and of the image", min=1)
    num_layers: int = flag(1, "number of LSTM layers (show_tell)", min=1)
    att_hid_size: int = flag(512, "hidden size of the attention MLP (topdown)", min=1)
    # optimization
    max_iters: int = flag(-1, "max number of iterations to run for (-1 = run forever, or until -max_epochs)")
    max_epochs: float = flag(-1, "new: stop after this many epochs (-1 = no limit)")
    max_time: float = flag(0, "new: stop (validate and save) after this many wall-clock seconds; 0 = no limit", min=0)
    max_cpu_time: float = flag(0, "new: stop (validate and save) after this many CPU seconds of this process; "
                                  "0 = no limit", min=0)
    batch_size: int = flag(16, "what is the batch size in number of images per batch", min=1)
    seq_per_img: int = flag(5, "number of captions to sample for each image during training", min=1)
    grad_clip: float = flag(0.1, "clip gradients at this value (element-wise, as neuraltalk2)")
    drop_prob_lm: float = flag(0.5, "strength of dropout in the Language Model RNN", min=0, max=0.99)
    finetune_cnn_after: int = flag(-1, "after what iteration do we start finetuning the CNN? (-1 = disable; "
                                       "needs prepro -image_data images)")
    optim: str = flag("adam", "optimizer for the language model", choices=["adam", "sgd"])
    learning_rate: float = flag(4e-4, "learning rate")
    learning_rate_decay_start: int = flag(-1, "at what iteration to start decaying learning rate? (-1 = dont)")
    learning_rate_decay_every: int = flag(50000, "every how many iterations thereafter to drop LR by half?", min=1)
    optim_alpha: float = flag(0.8, "alpha for adam (beta1)")
    optim_beta: float = flag(0.999, "beta used for adam (beta2)")
    optim_epsilon: float = flag(1e-8, "epsilon that goes into denominator for smoothing")
    cnn_optim: str = flag("adam", "optimization to use for CNN", choices=["adam", "sgd"])
    cnn_optim_alpha: float = flag(0.8, "alpha for momentum of CNN")
    cnn_optim_beta: float = flag(0.999, "beta for momentum of CNN")
    cnn_learning_rate: float = flag(1e-5, "learning rate for the CNN")
    cnn_weight_decay: float = flag(0.0, "L2 weight decay just for the CNN")
    # modern training options
    scheduled_sampling_start: float = flag(-1, "epoch at which to start scheduled sampling (-1 = off)")
    scheduled_sampling_increase_every: float = flag(5, "every how many epochs to raise the sampling probability")
    scheduled_sampling_increase_prob: float = flag(0.05, "how much to raise it each time")
    scheduled_sampling_max_prob: float = flag(0.25, "maximum scheduled sampling probability")
    self_critical_after: float = flag(-1, "epoch after which to train with self-critical sequence training "
                                          "(CIDEr-D reward, greedy baseline); -1 = never")
    train_sample_n: int = flag(5, "samples per image for self-critical training", min=1)
    # evaluation / checkpointing
    val_images_use: int = flag(3200, "how many images to use when periodically evaluating the validation loss? "
                                     "(-1 = all, 0 = no validation)", min=-1)
    save_checkpoint_every: int = flag(2500, "how often to save a model checkpoint (iterations)", min=1)
    checkpoint_path: str = flag("", "folder to save checkpoints into (empty = this directory)")
    language_eval: int = flag(0, "evaluate BLEU/METEOR/ROUGE-L/CIDEr on validation? (needs Java; 1 = yes)")
    beam_size: int = flag(1, "beam size for the validation captions", min=1)
    suppress_UNK: int = flag(1, "never produce UNK in the validation captions (1=yes, as ImageCaptioning.pytorch; "
                                "self-critical samples are not masked, as there)")
    losses_log_every: int = flag(25, "how often do we snapshot losses, for inclusion in the progress dump?", min=1)
    # misc
    id: str = flag("", "an id identifying this run/job; used in cross-val and appended when writing progress files")
    seed: int = flag(123, "random number generator seed to use")
    gpuid: int = flag(0, "which gpu to use. -1 = use CPU")
    threads: int = flag(0, "new: torch CPU threads (0 = torch's default)", min=0)


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from common import checkpoint, h5prep
from common.device import close_distributed, init_distributed, rng_state, seed_everything, set_rng_state
from common.signals import StopOnSignal
from common.training import Clock, agree, check_loss
from neuraltalk import engine
from neuraltalk.cnn import build_cnn, fingerprint
from neuraltalk.data import CaptionData
from neuraltalk.model import CaptionConfig, CaptionModel, build_model, canonical, config_of_checkpoint
from neuraltalk.rewards import CiderD


@dataclasses.dataclass
class History:
    """What neuraltalk2 kept in its checkpoint json, plus where the run stands."""
    iter: int = 0
    epoch: int = 0
    pos: int = 0
    loss_history: dict = dataclasses.field(default_factory=dict)
    val_loss_history: dict = dataclasses.field(default_factory=dict)
    val_lang_stats_history: dict = dataclasses.field(default_factory=dict)
    val_predictions: list = dataclasses.field(default_factory=list)
    best_score: float = -math.inf


def load_start(opt):
    """-start_from: a folder holding model_id<ID>.pt, or a .pt file -> the checkpoint dict (or None)."""
    if not opt.start_from:
        return None
    path = opt.start_from
    if os.path.isdir(path):
        path = os.path.join(path, f"model_id{opt.id}.pt")
        if not os.path.isfile(path):
            have = sorted(f for f in os.listdir(opt.start_from) if f.endswith(".pt"))
            raise UserError(f"-start_from {opt.start_from}: no model_id{opt.id}.pt there (found: "
                            f"{', '.join(have) or 'no .pt files'}); pass the matching -id")
    elif not os.path.exists(path):
        raise UserError(f"-start_from {opt.start_from}: no such folder or file")
    ckpt = checkpoint.load(path, KIND)
    ckpt["path"] = path
    saved = config_of_checkpoint(ckpt).caption_model
    if saved != canonical(opt.caption_model):
        raise UserError(f"{path}: a {saved} checkpoint, but -caption_model is {opt.caption_model}; pass "
                        f"-caption_model {saved}")
    return ckpt


SHAPING = ("input_encoding_size", "rnn_size", "num_layers", "att_hid_size")


def model_config(opt, data, cnn, ckpt, log) -> CaptionConfig:
    """This run's CaptionConfig, built once: from the options, or with -start_from the checkpoint's (its sizes
    win over the flags, and the log says so; dropout and the label length come from this run)."""
    if ckpt is None:
        return CaptionConfig(opt.caption_model, data.vocab_size, cnn.fc_dim, cnn.att_dim, opt.input_encoding_size,
                             opt.rnn_size, opt.num_layers, opt.drop_prob_lm, data.seq_length, opt.att_hid_size)
    cfg = config_of_checkpoint(ckpt)
    if (cfg.vocab_size, cfg.fc_dim, cfg.att_dim) != (data.vocab_size, cnn.fc_dim, cnn.att_dim if cfg.att_dim else 0):
        raise UserError(f"-start_from {ckpt['path']}: trained with a vocabulary of {cfg.vocab_size} and {cfg.fc_dim}-d "
                        f"features, but {opt.input_h5} has {data.vocab_size} and {cnn.fc_dim}; resume on the "
                        f"prepro.py output it was trained on")
    imposed = [f"-{k} {getattr(cfg, k)}" for k in SHAPING
               if getattr(cfg, k) != getattr(opt, k) and (k != "num_layers" or cfg.caption_model == "show_tell")
               and (k != "att_hid_size" or cfg.caption_model == "topdown")]
    if imposed:
        log(f"the checkpoint decides {', '.join(imposed)} (the sizes it was trained with)")
    return dataclasses.replace(cfg, drop_prob_lm=opt.drop_prob_lm, seq_length=data.seq_length)


def build(opt, data, ckpt, log):
    """The CNN prepro used (rebuilt and checked) + the caption model, loaded from -start_from if given."""
    info = data.cnn_info
    cnn = build_cnn(str(info["cnn"]), str(info["cnn_weights"]), int(info["att_size"]), int(info["seed"]))
    if "cnn_fingerprint" in info and not math.isclose(fingerprint(cnn), float(info["cnn_fingerprint"]),
                                                       rel_tol=1e-6):
        raise UserError(f"{opt.input_h5}: its features came from a different {info['cnn']} than -cnn_weights "
                        f"{info['cnn_weights']!r} gives here; re-run prepro.py")
    if canonical(opt.caption_model) == "topdown" and not (data.has_att or data.has_images):
        raise UserError(f"{opt.input_h5}: -caption_model topdown needs `att` features; run prepro.py with "
                        f"-image_data feats")
    cfg = model_config(opt, data, cnn, ckpt, log)
    decoder = build_model(cfg)
    model = CaptionModel(decoder, cnn, cfg)
    if ckpt is not None:
        model.decoder.load_state_dict(ckpt["model"])
        model.cnn.load_state_dict(ckpt["cnn"])
        model.set_feature_stats(**ckpt["feat_stats"])
    elif data.has_feats:
        model.set_feature_stats(*feature_stats(data, data.split_ix["train"]))
    log(f"{cfg.caption_model}: {sum(p.numel() for p in decoder.parameters()):,} parameters "
        f"(+ {info['cnn']} CNN {sum(p.numel() for p in cnn.parameters()):,})")
    return model


def feature_stats(data, ixs, chunk=256):
    """Per-dimension mean and std of the training images' fc (and att, per channel) features, read in chunks."""
    sums = {}
    for name in ("fc", "att") if data.has_att else ("fc",):
        n, s1, s2 = 0, 0.0, 0.0
        for b in range(0, len(ixs), chunk):
            x = torch.from_numpy(data.read(name, ixs[b:b + chunk])).double()
            x = x.reshape(-1, x.shape[-1])
            n, s1, s2 = n + x.shape[0], s1 + x.sum(0), s2 + (x * x).sum(0)
        mean = s1 / n
        std = (s2 / n - mean * mean).clamp(min=0).sqrt()
        std = std.clamp(min=1e-2 * float(std.mean()) + 1e-8)  # dead (always-zero) units: no division by 0
        sums[name] = (mean.float(), std.float())
    return (*sums["fc"], *sums.get("att", (None, None)))


def make_optimizers(model, opt):
    lm_params = list(model.decoder.parameters())
    cnn_params = list(model.cnn.parameters())
    if opt.optim == "adam":
        lm_opt = torch.optim.Adam(lm_params, opt.learning_rate, (opt.optim_alpha, opt.optim_beta), opt.optim_epsilon)
    else:
        lm_opt = torch.optim.SGD(lm_params, opt.learning_rate)
    if opt.cnn_optim == "adam":
        cnn_opt = torch.optim.Adam(cnn_params, opt.cnn_learning_rate, (opt.cnn_optim_alpha, opt.cnn_optim_beta),
                                   opt.optim_epsilon, weight_decay=opt.cnn_weight_decay)
    else:
        cnn_opt = torch.optim.SGD(cnn_params, opt.cnn_learning_rate, momentum=opt.cnn_optim_alpha,
                                  weight_decay=opt.cnn_weight_decay)
    return lm_opt, cnn_opt


def resume(ckpt, lm_opt, cnn_opt, log) -> History:
    if ckpt is None:
        return History()
    lm_opt.load_state_dict(ckpt["optimizer"])
    if ckpt.get("cnn_optimizer"):
        cnn_opt.load_state_dict(ckpt["cnn_optimizer"])
    set_rng_state(ckpt.get("rng"))
    h = History(**ckpt["history"])
    log(f"resuming at iteration {h.iter} (epoch {h.epoch})")
    return h


def learning_rate(opt, it):
    """neuraltalk2: halve every learning_rate_decay_every iterations after learning_rate_decay_start (smoothly)."""
    if opt.learning_rate_decay_start >= 0 and it > opt.learning_rate_decay_start:
        return opt.learning_rate * 0.5 ** ((it - opt.learning_rate_decay_start) / opt.learning_rate_decay_every)
    return opt.learning_rate


def ss_prob(opt, epoch):
    if opt.scheduled_sampling_start < 0 or epoch < opt.scheduled_sampling_start:
        return 0.0
    steps = (epoch - opt.scheduled_sampling_start) // opt.scheduled_sampling_increase_every
    return min(opt.scheduled_sampling_increase_prob * steps, opt.scheduled_sampling_max_prob)


def validate(model, data, opt, device, hist, log):
    """Validation loss, captions and (with -language_eval 1) scores; -> the score the best checkpoint keeps."""
    loss, preds, stats = engine.evaluate(model, data, "val", device, opt.val_images_use, opt.batch_size,
                                         opt.beam_size, seq_per_img=opt.seq_per_img, language_eval=bool(opt.language_eval),
                                         crop_size=int(data.cnn_info.get("crop_size", 224)),
                                         banned=engine.unk_columns(data.ix_to_word, opt.suppress_UNK))
    hist.val_loss_history[hist.iter] = loss
    hist.val_predictions = [{"image_id": p["image_id"], "caption": p["caption"]} for p in preds]
    if stats:
        hist.val_lang_stats_history[hist.iter] = stats
    shown = ", ".join(f"{k} {v:.3f}" for k, v in stats.items())
    log(f"validation loss {loss:.3f} at iteration {hist.iter}{'; ' + shown if shown else ''}")
    for p in preds[:3]:
        log(f"  image {p['image_id']}: {p['caption']}")
    return stats["CIDEr"] if stats else -loss


def save(opt, model, lm_opt, cnn_opt, hist, data, best):
    folder = opt.checkpoint_path or "."
    payload = {"model": {k: v.cpu() for k, v in model.decoder.state_dict().items()},
               "cnn": {k: v.cpu() for k, v in model.cnn.state_dict().items()},
               "feat_stats": model.feature_stats(),
               "cnn_info": {k: (v.item() if hasattr(v, "item") else v) for k, v in data.cnn_info.items()
                            if k in ("cnn", "cnn_weights", "att_size", "seed", "image_size", "crop_size")},
               "cnn_preprocess": model.cnn.preprocess,
               "config": model.config.to_dict(),
               "opt": dataclasses.asdict(opt), "ix_to_word": data.ix_to_word, "seq_length": data.seq_length,
               "optimizer": lm_opt.state_dict(), "cnn_optimizer": cnn_opt.state_dict(), "rng": rng_state(),
               "history": dataclasses.asdict(hist)}
    path = checkpoint.save(os.path.join(folder, f"model_id{opt.id}.pt"), KIND, payload)
    if best:
        checkpoint.save(os.path.join(folder, f"model_id{opt.id}-best.pt"), KIND, payload)
    h5prep.write_json(os.path.join(folder, f"model_id{opt.id}.json"),
                      {"opt": dataclasses.asdict(opt), "config": model.config.to_dict(), **dataclasses.asdict(hist)})
    return path


def train_iteration(net, model, data, ixs, it, epoch, opt, lm_opt, cnn_opt, cider, device):
    """One iteration on images `ixs`: features, XE (or SCST) loss, backward, clip, Adam -> (loss, reward)."""
    rng = np.random.default_rng([opt.seed, it])  # captions and crops of this iteration: same on resume
    finetune = 0 <= opt.finetune_cnn_after <= it
    for g in lm_opt.param_groups:
        g["lr"] = learning_rate(opt, it)
    model.train()
    model.cnn.train(finetune)  # a frozen CNN keeps its BatchNorm statistics
    fc, att = engine.image_features(model, data, ixs, device, int(data.cnn_info.get("crop_size", 224)), rng,
                                    finetune)
    if 0 <= opt.self_critical_after <= epoch:
        loss, reward = engine.scst_step(net, model, fc, att, engine.ref_tokens(data, ixs), cider,
                                        opt.train_sample_n, data.ix_to_word)
    else:
        labels = engine.labels_for(data, ixs, opt.seq_per_img, rng).to(device)
        loss = engine.xe_step(net, model, fc, att, labels, ss_prob(opt, epoch), opt.seq_per_img)
        loss = loss * ddp_token_weight(labels)
        reward = None
    lm_opt.zero_grad(set_to_none=True)
    cnn_opt.zero_grad(set_to_none=True)
    loss.backward()
    if opt.grad_clip > 0:
        torch.nn.utils.clip_grad_value_(model.parameters(), opt.grad_clip)
    lm_opt.step()
    if finetune:
        cnn_opt.step()
    return loss, reward


def ddp_token_weight(labels):
    """Under DDP: world size x this rank's share of the batch's tokens (words + one END per caption). Each rank's
    loss is a mean over its own tokens; weighted so, DDP's gradient average equals one process's mean over the
    whole batch (1 without DDP)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return 1.0
    n = ((labels > 0).sum() + labels.shape[0]).double()
    total = n.clone()
    dist.all_reduce(total)
    return float(n * dist.get_world_size() / total)


def main(opt: TrainOptions):
    device, rank, world = init_distributed(opt.gpuid)
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    master = rank == 0
    log = print if master else (lambda *a, **k: None)
    seed_everything(opt.seed + rank)
    try:
        # data, model, optimizers, and where the run stands
        ckpt = load_start(opt)
        data, train_ix = load_data(opt)
        model = build(opt, data, ckpt, log).to(device)
        lm_opt, cnn_opt = make_optimizers(model, opt)
        hist = resume(ckpt, lm_opt, cnn_opt, log)
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if world > 1 else model
        cider = CiderD(engine.ref_tokens(data, train_ix)) if opt.self_critical_after >= 0 else None
        iters_per_epoch = math.ceil(len(train_ix) / opt.batch_size)
        total = last_iteration(opt, iters_per_epoch)
        os.makedirs(opt.checkpoint_path or ".", exist_ok=True)
        if master:
            checkpoint.remove_stale_temporaries(opt.checkpoint_path or ".")  # left by a kill -9 mid-save
        log(f"{len(train_ix)} training images, {iters_per_epoch} iterations per epoch of {opt.batch_size} images "
            f"x {opt.seq_per_img} captions")

        # the loop: a batch, a step, the loss; validate and save every -save_checkpoint_every iterations
        clock, first_loss = Clock(opt.max_time, opt.max_cpu_time), None
        order = engine.Order(hist.epoch, hist.pos)
        bar = tqdm(total=total, initial=hist.iter, unit="it", dynamic_ncols=True,
                   disable=not master or not sys.stderr.isatty())
        with bar, StopOnSignal() as signalled:  # SIGINT/SIGTERM: finish the iteration, save, exit 130/143
            while total is None or hist.iter < total:
                ixs, _ = engine.next_batch(train_ix, order, opt.batch_size, opt.seed)
                loss, reward = train_iteration(net, model, data, ixs[rank::world], hist.iter,
                                               hist.iter / iters_per_epoch, opt, lm_opt, cnn_opt, cider, device)
                hist.iter += 1
                hist.epoch, hist.pos = order.epoch, order.pos
                loss_v, stop, interrupted = agree(float(loss.detach()), clock.out_of_time(), signalled.requested,
                                                  device=device)
                check_loss(loss_v, first_loss, explode=0 if reward is not None else 3, where=f"iteration {hist.iter}",
                           hint="try a lower -learning_rate or -grad_clip")  # an SCST loss may be < 0: no ratio
                first_loss = loss_v if first_loss is None else first_loss
                record_loss(opt, hist, bar, loss_v, reward, iters_per_epoch, log)
                if interrupted:  # save where the run stands (no validation: the user is waiting)
                    path = save_now(opt, model, lm_opt, cnn_opt, hist, data, master, world)
                    data.close()
                    signalled.exit_if_stopped(f"saved {path} at iteration {hist.iter}; resume with "
                                              f"-start_from {shlex.quote(path)}" + (f" -id {opt.id}" if opt.id else ""))
                    sys.exit(130)  # another rank was signalled
                if hist.iter % opt.save_checkpoint_every == 0 or stop or (total is not None and hist.iter >= total):
                    validate_and_save(opt, model, data, lm_opt, cnn_opt, hist, loss_v, device, master, world, log)
                if stop:
                    log(f"stopping after {clock.reason() or 'another rank ran out of time'} at iteration {hist.iter}")
                    break
        data.close()
        return os.path.join(opt.checkpoint_path or ".", f"model_id{opt.id}.pt") if master else None
    finally:
        close_distributed()


def load_data(opt):
    """The label h5 + json, checked for what this run needs -> (data, the training images' indices)."""
    data = CaptionData(opt.input_json, opt.input_h5)
    train_ix = data.require_split("train", "training")
    if opt.val_images_use != 0:
        data.require_split("val", "validation (or pass -val_images_use 0)")
    if opt.finetune_cnn_after >= 0 and not data.has_images:
        raise UserError(f"{opt.input_h5}: -finetune_cnn_after needs the images; run prepro.py with "
                        f"-image_data images (or both)")
    return data, train_ix


def last_iteration(opt, iters_per_epoch):
    """-max_iters, else -max_epochs in iterations, else None (run until stopped or -max_time/-max_cpu_time)."""
    if opt.max_iters > 0:
        return opt.max_iters
    return math.ceil(opt.max_epochs * iters_per_epoch) if opt.max_epochs > 0 else None


def record_loss(opt, hist, bar, loss, reward, iters_per_epoch, log):
    """Every -losses_log_every iterations into the loss history (and a log line when there is no progress bar)."""
    if hist.iter % opt.losses_log_every == 0:
        hist.loss_history[hist.iter] = loss
        if bar.disable:  # no progress bar (a log file): a line now and then instead
            log(f"iter {hist.iter}: loss {loss:.3f}" + (f", reward {reward:.3f}" if reward is not None else ""))
    bar.update(1)
    bar.set_postfix(loss=f"{loss:.3f}", epoch=f"{hist.iter / iters_per_epoch:.2f}",
                    **({"reward": f"{reward:.3f}"} if reward is not None else {}))


def validate_and_save(opt, model, data, lm_opt, cnn_opt, hist, loss, device, master, world, log):
    """On rank 0: validation loss + captions (+ scores), then the checkpoints; the best one by CIDEr (or by
    validation loss, or without validation by training loss). Other ranks wait."""
    if master:
        score = validate(model, data, opt, device, hist, log) if opt.val_images_use != 0 else -loss
        best = score > hist.best_score
        hist.best_score = max(hist.best_score, score)
        path = save(opt, model, lm_opt, cnn_opt, hist, data, best)
        log(f"saved {path}{' (new best)' if best else ''}")
    if world > 1:
        dist.barrier()


def save_now(opt, model, lm_opt, cnn_opt, hist, data, master, world):
    """The latest state as model_id<ID>.pt (never as -best), for -start_from; -> its path."""
    path = os.path.join(opt.checkpoint_path or ".", f"model_id{opt.id}.pt")
    if master:
        path = save(opt, model, lm_opt, cnn_opt, hist, data, best=False)
    if world > 1:
        dist.barrier()
    return path


if __name__ == "__main__":
    run(main, parse(TrainOptions))
