"""Sequence-to-sequence chatbot: LSTM encoder, LSTM decoder, optional Luong attention, beam search.

The plain model is the original's (chatbot-zh-torch7 `seq2seq.lua`): embedding size = hidden size,
the encoder's final hidden and cell states seed the decoder. The attention model adds Luong et al.'s
(2015) global attention on top of the decoder's outputs (no input feeding, so teacher-forced training
runs the decoder over the whole target at once), with a residual connection around it.
"""
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, GO, EOS, UNK = 0, 1, 2, 3


@dataclass
class Seq2SeqConfig:
    vocab_size: int
    hidden_size: int = 300
    num_layers: int = 1
    dropout: float = 0.2
    attention: str = "general"  # Luong score: "general", "dot", or "none" (the original's plain model)
    residual: bool = True  # add the decoder state to the attentional vector (see LuongAttention)

    def to_dict(self):
        return asdict(self)


class Encoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=PAD)
        self.rnn = nn.LSTM(cfg.hidden_size, cfg.hidden_size, cfg.num_layers, batch_first=True,
                           dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, src, lengths):
        x = self.drop(self.embedding(src))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)  # packing = the original's MaskZero: padding never enters the state
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return out, state


class LuongAttention(nn.Module):
    """score(h_t, h_s) = h_t . W h_s ("general") or h_t . h_s ("dot"); output tanh(W_c [c_t; h_t]).

    With `residual`, the output is h_t + tanh(W_c [c_t; h_t]): the decoder state keeps a direct path to
    the output layer, so early in training the model is no worse than the plain one while it learns
    where to look (without it, attention trailed the plain model for the first few hundred batches).
    """

    def __init__(self, hidden_size, score="general", residual=False):
        super().__init__()
        self.residual = residual
        self.W = nn.Linear(hidden_size, hidden_size, bias=False) if score == "general" else nn.Identity()
        self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=False)

    def forward(self, dec_out, enc_out, src_mask):
        scores = torch.bmm(self.W(dec_out), enc_out.transpose(1, 2))  # (B, T, S)
        scores = scores.masked_fill(~src_mask[:, None, :], float("-inf"))
        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, enc_out)
        attentional = torch.tanh(self.combine(torch.cat([context, dec_out], dim=-1)))
        return (dec_out + attentional if self.residual else attentional), weights


class Decoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=PAD)
        self.rnn = nn.LSTM(cfg.hidden_size, cfg.hidden_size, cfg.num_layers, batch_first=True,
                           dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.attention = LuongAttention(cfg.hidden_size, cfg.attention, cfg.residual) if cfg.attention != "none" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def features(self, y, state, enc_out, src_mask):
        """The vectors the output layer reads, (B, T, H), and the new LSTM state."""
        h, state = self.rnn(self.drop(self.embedding(y)), state)
        if self.attention is not None:
            h, _ = self.attention(h, enc_out, src_mask)
        return self.drop(h), state

    def forward(self, y, state, enc_out, src_mask):
        h, state = self.features(y, state, enc_out, src_mask)
        return self.out(h), state


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        if cfg.attention not in ("general", "dot", "none"):
            raise ValueError(f"attention must be general, dot or none, not {cfg.attention!r}")
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, src, lengths, y_in, targets=None, reduction="mean"):
        """Teacher-forced logits (B, T, V) for decoder inputs y_in = `<go> w1 ... wn`; with targets, the
        cross-entropy over non-padding positions instead (the output layer then skips the padding,
        which is most of a batch's positions: the vocabulary projection is the costly part)."""
        enc_out, state = self.encoder(src, lengths)
        h, _ = self.decoder.features(y_in, state, enc_out, src != PAD)
        if targets is None:
            return self.decoder.out(h)
        keep = targets != PAD
        return F.cross_entropy(self.decoder.out(h[keep]), targets[keep], reduction=reduction)

    @torch.no_grad()
    def generate(self, src, lengths, max_len=20, beam=1, len_penalty=1.0, no_repeat_ngram=3, trace=None):
        """Token ids of the best reply to one source (src: (1, S)), by beam search (beam=1: greedy).

        Never emits <unknown>/<pad>/<go>; blocks a token that would appear three times in a row or
        repeat a `no_repeat_ngram`-gram already said (the "sorry, sorry, sorry" of neuralconvo #18).
        `trace`, a list, receives the top-4 (id, prob) of each greedy step (eval.py --debug)."""
        enc_out, state = self.encoder(src, lengths)
        mask = src != PAD
        beams = [(0.0, [GO])]
        finished = []
        for t in range(max_len + 1):
            k = len(beams)
            y = torch.tensor([[b[1][-1]] for b in beams], device=src.device)
            logits, state = self.decoder(y, state, enc_out.expand(k, -1, -1), mask.expand(k, -1))
            logp = F.log_softmax(logits[:, -1].float(), dim=-1)
            logp[:, [PAD, GO, UNK]] = float("-inf")
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
            total = torch.tensor([b[0] for b in beams], device=logp.device)[:, None] + logp
            top, idx = total.view(-1).topk(min(2 * beam, total.numel()))
            new_beams, parents = [], []
            for score, flat in zip(top.tolist(), idx.tolist()):
                if score == float("-inf"):
                    break
                parent, tok = divmod(flat, logp.size(1))
                seq = beams[parent][1] + [tok]
                if tok == EOS:
                    finished.append((score / (len(seq) - 1) ** len_penalty, seq[1:-1]))
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
