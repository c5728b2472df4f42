"""Sequence-to-sequence chatbot: LSTM encoder, LSTM decoder, optional Luong attention, beam search.

The plain model is the original's (chatbot-zh-torch7 `seq2seq.lua`): embedding size = hidden size,
the encoder's final hidden and cell states seed the decoder. The attention model adds Luong et al.'s
(2015) global attention on top of the decoder's outputs (no input feeding, so teacher-forced training
runs the decoder over the whole target at once), with a residual connection around it.

The output layer is a full softmax over the vocabulary (the original's) or, by default, an adaptive
softmax (Grave et al. 2017): with a vocabulary sorted by frequency, the most frequent tokens share a
head softmax and rare ones sit in tail clusters reached through smaller projections. It gives exact,
normalised probabilities at a fraction of the cost (a profile had the 4,004-way output layer at about
twice the decoder LSTM per token).
"""
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, GO, EOS, UNK, SEP = 0, 1, 2, 3, 4  # the original's ids 0-3, plus <sep> between context turns


@dataclass
class Seq2SeqConfig:
    vocab_size: int
    hidden_size: int = 300
    num_layers: int = 1
    dropout: float = 0.2
    attention: str = "general"  # Luong score: "general", "dot", or "none" (the original's plain model)
    softmax: str = "full"  # output layer: "full" (the original's) or "adaptive"

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        """A config from a checkpoint; fields of older versions (e.g. `residual`) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Encoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=PAD)
        self.rnn = nn.LSTM(cfg.hidden_size, cfg.hidden_size, cfg.num_layers, batch_first=True,
                           dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, src, lengths):
        """Outputs (B, S, H), zero after each source's end, and the state after its last token.

        Padding never enters the state (the original's MaskZero). Rather than packing the whole batch
        (PyTorch's packed LSTM runs step by step, 1.6x slower than its fused kernel on CPU), the fused
        LSTM reads the first min(lengths) tokens, which every source has, and a packed one only the rest
        (batches are bucketed by length, so that rest is short or empty)."""
        x = self.drop(self.embedding(src))
        lengths = lengths.cpu()
        m = int(lengths.min())
        out, state = self.rnn(x[:, :m])
        rows = (lengths > m).nonzero().squeeze(1)
        if len(rows):
            rows_dev = rows.to(src.device)
            packed = pack_padded_sequence(x[rows_dev, m:], lengths[rows] - m, batch_first=True, enforce_sorted=False)
            rest, (h, c) = self.rnn(packed, tuple(s[:, rows_dev].contiguous() for s in state))
            rest, _ = pad_packed_sequence(rest, batch_first=True, total_length=src.size(1) - m)
            rest = out.new_zeros(len(src), src.size(1) - m, out.size(2)).index_copy(0, rows_dev, rest.to(out.dtype))
            out = torch.cat([out, rest], dim=1)
            state = (state[0].index_copy(1, rows_dev, h.to(state[0].dtype)),
                     state[1].index_copy(1, rows_dev, c.to(state[1].dtype)))
        return out, state


class LuongAttention(nn.Module):
    """score(h_t, h_s) = h_t . W h_s ("general") or h_t . h_s ("dot"); output h_t + tanh(W_c [c_t; h_t]).

    The residual h_t + ... keeps the decoder state's direct path to the output layer, so early in
    training the model is no worse than the plain one while it learns where to look (without it,
    attention trailed the plain model for the first few hundred batches).
    """

    def __init__(self, hidden_size, score="general"):
        super().__init__()
        self.W = nn.Linear(hidden_size, hidden_size, bias=False) if score == "general" else nn.Identity()
        self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=False)

    def forward(self, dec_out, enc_out, src_mask):
        scores = torch.bmm(self.W(dec_out), enc_out.transpose(1, 2))  # (B, T, S)
        scores = scores.masked_fill(~src_mask[:, None, :], float("-inf"))
        weights = F.softmax(scores.float(), dim=-1).to(enc_out.dtype)
        context = torch.bmm(weights, enc_out)
        return dec_out + torch.tanh(self.combine(torch.cat([context, dec_out], dim=-1))), weights


def adaptive_cutoffs(vocab_size):
    """Cluster bounds for a frequency-sorted vocabulary: on dgk_lost_conv's characters the first 500
    ids cover 86% of reply tokens and the first 1,500 97%."""
    cutoffs = [c for c in (500, 1500, 6000) if c < vocab_size - 1]
    return cutoffs


class AdaptiveSoftmax(nn.Module):
    """Exact log-probabilities over a frequency-sorted vocabulary (Grave et al. 2017).

    The head scores ids < cutoffs[0] plus one entry per tail cluster; cluster i's tokens get
    log p(cluster i) + log p(token | cluster i), with the tail reading a projection of size H / 4^(i+1).
    Unlike nn.AdaptiveLogSoftmaxWithLoss this runs under bf16 autocast and returns per-token losses."""

    def __init__(self, hidden_size, vocab_size, cutoffs, div_value=4.0):
        super().__init__()
        self.bounds = list(cutoffs) + [vocab_size]
        self.head = nn.Linear(hidden_size, self.bounds[0] + len(cutoffs))
        self.tails = nn.ModuleList()
        for i, (lo, hi) in enumerate(zip(self.bounds, self.bounds[1:])):
            size = max(int(hidden_size // div_value ** (i + 1)), 8)
            self.tails.append(nn.Sequential(nn.Linear(hidden_size, size, bias=False), nn.Linear(size, hi - lo, bias=False)))

    def log_prob(self, h):
        """(N, V) log-probabilities of every token."""
        head = F.log_softmax(self.head(h).float(), dim=-1)
        n = self.bounds[0]
        parts = [head[:, :n]]
        for i, tail in enumerate(self.tails):
            parts.append(head[:, n + i:n + i + 1] + F.log_softmax(tail(h).float(), dim=-1))
        return torch.cat(parts, dim=-1)

    def nll(self, h, target):
        """(N,) negative log-probability of each target; each tail runs only on its own tokens."""
        n = self.bounds[0]
        head_target = target.clone()
        for i, (lo, hi) in enumerate(zip(self.bounds, self.bounds[1:])):
            head_target[(target >= lo) & (target < hi)] = n + i
        head = F.log_softmax(self.head(h).float(), dim=-1)
        logp = head.gather(1, head_target[:, None]).squeeze(1)
        for i, (lo, hi) in enumerate(zip(self.bounds, self.bounds[1:])):
            rows = ((target >= lo) & (target < hi)).nonzero().squeeze(1)
            if len(rows):
                tail = F.log_softmax(self.tails[i](h[rows]).float(), dim=-1)
                logp = logp.index_add(0, rows, tail.gather(1, (target[rows] - lo)[:, None]).squeeze(1))
        return -logp


class FullSoftmax(nn.Linear):
    """The original's output layer: one Linear over the whole vocabulary."""

    def log_prob(self, h):
        return F.log_softmax(self(h).float(), dim=-1)

    def nll(self, h, target):
        return F.cross_entropy(self(h).float(), target, reduction="none")


class Decoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=PAD)
        self.rnn = nn.LSTM(cfg.hidden_size, cfg.hidden_size, cfg.num_layers, batch_first=True,
                           dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.attention = LuongAttention(cfg.hidden_size, cfg.attention) if cfg.attention != "none" else None
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.softmax == "adaptive":
            self.out = AdaptiveSoftmax(cfg.hidden_size, cfg.vocab_size, adaptive_cutoffs(cfg.vocab_size))
        else:
            self.out = FullSoftmax(cfg.hidden_size, cfg.vocab_size)

    def forward(self, y, state, enc_out, src_mask):
        """The vectors the output layer reads, (B, T, H), and the new LSTM state."""
        h, state = self.rnn(self.drop(self.embedding(y)), state)
        if self.attention is not None:
            h, _ = self.attention(h, enc_out, src_mask)
        return self.drop(h), state


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        if cfg.attention not in ("general", "dot", "none"):
            raise ValueError(f"attention must be general, dot or none, not {cfg.attention!r}")
        if cfg.softmax not in ("full", "adaptive"):
            raise ValueError(f"softmax must be full or adaptive, not {cfg.softmax!r}")
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, src, lengths, y_in, targets=None, reduction="mean"):
        """Teacher-forced log-probabilities (B, T, V) for decoder inputs y_in = `<go> w1 ... wn`; with
        targets, the cross-entropy over non-padding positions instead (the output layer then skips the
        padding, which is most of a batch's positions)."""
        enc_out, state = self.encoder(src, lengths)
        h, _ = self.decoder(y_in, state, enc_out, src != PAD)
        if targets is None:
            return self.decoder.out.log_prob(h.flatten(0, 1)).view(*h.shape[:2], -1)
        keep = targets != PAD
        nll = self.decoder.out.nll(h[keep], targets[keep])
        return nll.sum() if reduction == "sum" else nll.mean()

    @torch.no_grad()
    def generate(self, src, lengths, max_len=20, beam=1, no_repeat_ngram=3, temperature=0.0, generator=None,
                 trace=None):
        """Token ids of the best reply to one source (src: (1, S)), by beam search (beam=1: greedy), or
        sampled at `temperature` > 0 (beam must then be 1).

        Never emits <unknown>/<pad>/<go>/<sep>; blocks a token that would appear three times in a row or
        repeat a `no_repeat_ngram`-gram already said (the "sorry, sorry, sorry" of neuralconvo #18).
        Finished beams are ranked by log-probability per token (including <eos>).
        `trace`, a list, receives the top-4 (id, prob) of each greedy step (eval.py --debug)."""
        if temperature > 0 and beam != 1:
            raise ValueError("sampling (temperature > 0) draws one reply: use beam=1")
        enc_out, state = self.encoder(src, lengths)
        mask = src != PAD
        beams = [(0.0, [GO])]
        finished = []
        for t in range(max_len + 1):
            k = len(beams)
            y = torch.tensor([[b[1][-1]] for b in beams], device=src.device)
            h, state = self.decoder(y, state, enc_out.expand(k, -1, -1), mask.expand(k, -1))
            logp = self.decoder.out.log_prob(h[:, -1])
            logp[:, [PAD, GO, UNK, SEP]] = float("-inf")
            if t == 0:
                logp[:, EOS] = float("-inf")  # say something
            if t == max_len:  # out of room: end here
                keep = logp[:, EOS].clone()
                logp.fill_(float("-inf"))
                logp[:, EOS] = keep
            for i, (_, seq) in enumerate(beams):
                for tok in banned_next(seq[1:], no_repeat_ngram):
                    logp[i, tok] = float("-inf")
            if trace is not None and k == 1:
                p, ix = logp[0].exp().topk(4)
                trace.append(list(zip(ix.tolist(), p.tolist())))
            if temperature > 0:
                probs = F.softmax(logp[0] / temperature, dim=-1)
                tok = int(torch.multinomial(probs, 1, generator=generator))
                candidates = [(beams[0][0] + logp[0, tok].item(), tok)]
            else:
                total = torch.tensor([b[0] for b in beams], device=logp.device)[:, None] + logp
                top, idx = total.view(-1).topk(min(2 * beam, total.numel()))
                candidates = [(s, i) for s, i in zip(top.tolist(), idx.tolist())]
            new_beams, parents = [], []
            for score, flat in candidates:
                if score == float("-inf"):
                    break
                parent, tok = divmod(flat, logp.size(1))
                seq = beams[parent][1] + [tok]
                if tok == EOS:
                    finished.append((score / (len(seq) - 1), seq[1:-1]))
                else:
                    new_beams.append((score, seq))
                    parents.append(parent)
                if len(new_beams) == beam:
                    break
            if len(finished) >= beam or not new_beams:
                break
            beams = new_beams
            index = torch.tensor(parents, device=src.device)
            state = tuple(s.index_select(1, index) for s in state)
        if not finished:
            return []
        return max(finished, key=lambda f: f[0])[1]


def banned_next(seq, n):
    """Tokens that may not follow `seq`: a third copy in a row, or one completing a repeated n-gram."""
    banned = set()
    if len(seq) >= 2 and seq[-1] == seq[-2]:
        banned.add(seq[-1])
    if n > 0 and len(seq) >= n - 1:
        prefix = tuple(seq[len(seq) - n + 1:]) if n > 1 else ()
        for i in range(len(seq) - n + 1):
            if tuple(seq[i:i + n - 1]) == prefix:
                banned.add(seq[i + n - 1])
    return banned
