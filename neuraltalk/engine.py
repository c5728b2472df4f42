"""The per-iteration pieces of training and the evaluation over a split (shared by train.py and eval.py).

    ixs, wrapped = next_batch(train_ix, order, batch_size, seed)          # the next images; order advances
    fc, att = image_features(model, data, ixs, device, crop_size, rng)   # stored features or CNN(images)
    loss = xe_step(net, model, fc, att, labels, ss_prob, seq_per_img)    # labels = labels_for(data, ixs, ...)
    loss, reward = scst_step(net, model, fc, att, refs_tokens, cider, sample_n, ix_to_word)
    loss, predictions, lang_stats = evaluate(model, data, split, device, num_images, batch_size, beam_size, ...)
"""
import dataclasses
import math

import numpy as np
import torch
from tqdm import tqdm

from common import lang_eval
from common.captions import UNK, decode_batch, tokenize
from common.cli import UserError
from neuraltalk.data import center_crop, random_crop


@dataclasses.dataclass
class Order:
    """Where the training iterator stands: epoch number and position in that epoch's permutation."""
    epoch: int = 0
    pos: int = 0


def epoch_permutation(train_ix, seed, epoch):
    return np.random.default_rng([seed, epoch]).permutation(np.asarray(train_ix))


def next_batch(train_ix, order: Order, batch_size, seed):
    """The next batch_size training images (wrapping into the next epoch's shuffle); -> (ixs, wrapped)."""
    ixs, wrapped = [], False
    while len(ixs) < batch_size:
        perm = epoch_permutation(train_ix, seed, order.epoch)
        take = perm[order.pos:order.pos + batch_size - len(ixs)]
        ixs.extend(take.tolist())
        order.pos += len(take)
        if order.pos >= len(perm):
            order.epoch, order.pos, wrapped = order.epoch + 1, 0, True
    return np.array(ixs), wrapped


def labels_for(data, ixs, seq_per_img, rng):
    return torch.from_numpy(np.concatenate([data.captions_for(int(k), seq_per_img, rng) for k in ixs]))


def image_features(model, data, ixs, device, crop_size=224, rng=None, finetune=False):
    """(fc, att) for images `ixs`: the stored features, or the CNN run on the stored images
    (random crop when training, centre crop otherwise, as neuraltalk2)."""
    if data.has_feats and not finetune:
        fc = torch.from_numpy(data.read("fc", ixs)).float().to(device)
        att = torch.from_numpy(data.read("att", ixs)).float().to(device) if data.has_att else None
        return fc, att
    if not data.has_images:
        raise UserError("CNN fine-tuning needs the images in the h5: run prepro.py with -image_data images (or both)")
    imgs = torch.from_numpy(data.read("images", ixs))
    imgs = random_crop(imgs, crop_size, rng) if rng is not None else center_crop(imgs, crop_size)
    return model.features(imgs.to(device), finetune=finetune)


def expand(x, n):
    return None if x is None else x.repeat_interleave(n, 0)


def xe_step(net, model, fc, att, labels, ss_prob, seq_per_img):
    """Cross-entropy (neuraltalk2's LanguageModelCriterion) with optional scheduled sampling; fc/att per image,
    labels seq_per_img per image."""
    logits = net(fc, att, labels, ss_prob, seq_per_img=seq_per_img)
    return model.decoder.loss(logits, labels)


def scst_step(net, model, fc, att, refs_tokens, cider, sample_n, ix_to_word):
    """Self-critical sequence training: reward = CIDEr-D(sample) - CIDEr-D(greedy), per image.

    fc/att are per image (not expanded); refs_tokens[k] the tokenized references of image k.
    Returns (loss, mean sample reward).
    """
    model.eval()
    with torch.no_grad():
        greedy, _ = net(fc, att, mode="sample")
    model.train()
    seq, logprobs = net(expand(fc, sample_n), expand(att, sample_n), mode="sample", sample_max=False)
    greedy_words = [s.split() for s in decode_batch(greedy.cpu().numpy(), ix_to_word)]
    sample_words = [s.split() for s in decode_batch(seq.cpu().numpy(), ix_to_word)]
    refs = [refs_tokens[k // sample_n] for k in range(len(sample_words))]
    base = cider.scores(greedy_words, refs_tokens)
    reward = cider.scores(sample_words, refs) - np.repeat(base, sample_n)
    reward = torch.as_tensor(reward, dtype=logprobs.dtype, device=logprobs.device)
    mask = torch.cat([torch.ones_like(seq[:, :1]), (seq[:, :-1] > 0).long()], 1).to(logprobs.dtype)
    loss = -(logprobs * reward.unsqueeze(1) * mask).sum() / mask.sum()
    return loss, float(np.mean(reward.cpu().numpy() + np.repeat(base, sample_n)))


def unk_columns(ix_to_word, suppress_UNK=True):
    """-suppress_UNK: the output column of the vocabulary's UNK (word id k is column k-1), if it has one."""
    return [int(k) - 1 for k, w in ix_to_word.items() if w == UNK] if suppress_UNK else []


def ref_tokens(data, ixs):
    return [[tokenize(c) for c in data.refs(int(k))] for k in ixs]


@torch.no_grad()
def evaluate(model, data, split, device, num_images=-1, batch_size=16, beam_size=1, sample_max=True,
             temperature=1.0, seq_per_img=5, crop_size=224, language_eval=False, verbose=False, banned=()):
    """Caption up to num_images images of a split; -> (mean loss, predictions [{image_id, caption, ix}], stats).

    The loss is the cross-entropy on each image's first seq_per_img references (NaN when the references
    are not in the label h5); lang_stats is {} unless language_eval. `banned` columns are never decoded.
    """
    ixs = data.require_split(split, f"evaluating split '{split}'")
    if num_images is not None and num_images >= 0:
        ixs = ixs[:num_images]
    was_training = model.training
    model.eval()
    losses, predictions = [], []
    rng = np.random.default_rng(0)
    for b in tqdm(range(0, len(ixs), batch_size), desc=f"eval {split}", unit="batch", leave=False,
                  disable=not verbose):
        batch = np.array(ixs[b:b + batch_size])
        fc, att = image_features(model, data, batch, device, crop_size)
        labels = labels_for(data, batch, seq_per_img, rng).to(device)
        logits = model(fc, att, labels, seq_per_img=seq_per_img)
        losses.append(float(model.decoder.loss(logits, labels)))
        seq, _ = model(fc, att, mode="sample", beam_size=beam_size, sample_max=sample_max, temperature=temperature,
                       banned=banned)
        for k, sent in zip(batch, decode_batch(seq.cpu().numpy(), data.ix_to_word)):
            predictions.append({"image_id": data.images[k]["id"], "caption": sent, "ix": int(k)})
    model.train(was_training)
    stats = {}
    if language_eval:
        stats = score_predictions(predictions, data)
    loss = float(np.mean(losses)) if losses else math.nan
    return loss, predictions, stats


def score_predictions(predictions, data):
    refs = {p["image_id"]: data.refs(p["ix"]) for p in predictions}
    hyps = {p["image_id"]: p["caption"] for p in predictions}
    return lang_eval.score(refs, hyps)
