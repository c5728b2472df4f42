"""Scores of a chatbot: perplexity (also with mismatched questions), BLEU-2, distinct-n."""
import math

import torch

from chatbot.batches import PairData, collate
from chatbot.prep import read_meta
from chatbot.tokens import PAD, UNK
from common.cli import UserError


@torch.inference_mode()
def evaluate(model, data, batch_size, device, mismatch=False):
    """Mean NLL per target token (words or characters, plus <eos>) over a whole split.

    With `mismatch`, each reply is scored after the question of the pair half a batch away (pairs are
    in file order, so almost always from another dialog): how much worse that is tells how much the
    model's replies depend on the question at all."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for src, tgt in data.batches(batch_size, shuffle=False):
        if mismatch:
            half = len(src) // 2
            src = src[half:] + src[:half]
        x, lengths, y_in, y_out = collate(src, tgt, device)
        total += model(x, lengths, y_in, y_out, reduction="sum").item()
        count += (y_out != PAD).sum().item()
    model.train(was_training)
    return total / max(count, 1)


def bleu2(hyps, refs):
    """Corpus BLEU-2 (uniform 1/2-gram weights, brevity penalty), one reference per hypothesis, by
    pycocoevalcap's BLEU (coco-caption's). The replies are token ids already, so they go in as id strings,
    past the PTB tokenizer that common.lang_eval runs for captions (it would split nothing here, and needs Java).
    With no matching bigram the score is ~1e-15 (coco-caption's smoothing), not exactly 0."""
    from pycocoevalcap.bleu.bleu import Bleu
    if not hyps:
        return 0.0
    gts = {i: [" ".join(map(str, r))] for i, r in enumerate(refs)}
    res = {i: [" ".join(map(str, h))] for i, h in enumerate(hyps)}
    scores, _ = Bleu(2).compute_score(gts, res, verbose=0)
    return float(scores[1])


def distinct(hyps, n):
    """Distinct n-grams / all n-grams over all replies (Li et al. 2016)."""
    grams = [tuple(h[i:i + n]) for h in hyps for i in range(len(h) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def score(bot, h5_path, n):
    """Perplexity (teacher-forced, all pairs) and BLEU-2 / distinct-1/2 of greedy replies (first n pairs)."""
    try:
        meta = read_meta(h5_path)
    except (OSError, KeyError):
        raise UserError(f"{h5_path}: missing or not a corpus.h5 written by train.py; point --dataDir at the "
                        "folder the model was trained in") from None
    if meta["source_sha1"] != bot.source_sha1 or meta["words"] != bot.words or meta["context"] != bot.context:
        raise UserError(f"{h5_path} was built from another corpus, vocabulary or --context than the model; "
                        "retrain, or point --dataDir at the folder the model was trained in")
    data = PairData(h5_path, "val")
    if len(data) == 0:
        raise UserError(f"{h5_path}: no validation pairs to score (train with --valSetSize > 0)")
    ppl = math.exp(evaluate(bot.model, data, 64, bot.device))
    ppl_mismatched = math.exp(evaluate(bot.model, data, 64, bot.device, mismatch=True))
    n = len(data) if n < 0 else min(n, len(data))
    hyps, refs = [], []
    for src, tgt in data.batches(64, shuffle=False):
        for s, t in zip(src, tgt):
            if len(hyps) < n:
                hyps.append(bot.reply_ids(s.tolist()))
                refs.append(t.tolist())
    data.close()
    return dict(pairs=len(data), scored=n, unit=bot.unit, ppl=ppl, ppl_mismatched=ppl_mismatched,
                bleu2=bleu2(hyps, refs), distinct1=distinct(hyps, 1), distinct2=distinct(hyps, 2),
                unknown_replies=sum(all(i == UNK for i in h) for h in hyps))
