"""neuraltalk2's (and densecap's) LSTM caption language model, with batched greedy/sampled/beam decoding.

The sequence it reads, as in the Lua LanguageModel: step 0 the image (or region) vector, already
projected by the caller to `input_encoding_size`; step 1 the START token; then the caption's words.
Its outputs at steps 1..T+1 predict the words and then END.

Token numbering follows the Lua code: words are 1..V (0 is padding in label arrays) and V+1 is both
START (as input) and END (as output). Tensors are 0-based, so token k lives at row/column k-1:

    state_dict layout (what the .t7 converters map into)
      embed.weight        (V+1, E)   Lua lookup_table.weight, unchanged (row V = START)
      lstm.rnn.*_l{n}     nn.LSTM    Lua core's i2h_{n+1}/h2h_{n+1}, gates reordered by
                                     common.lstm.LSTM.load_charrnn_layer (i,f,o,g -> i,f,g,o)
      logit.weight/bias   (V+1, H)   Lua core's `decoder` Linear, unchanged (column V = END)

Dropout sits where the Lua LSTM put it: between layers and on the top layer's output (drop_final).
`sample_sequences` and `beam_search` are model-agnostic: any decoder written as `step(ix, state)`
(attention models included) uses them.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.lstm import LSTM, lstm_cell


class LanguageModel(nn.Module):
    def __init__(self, vocab_size, input_encoding_size, rnn_size, num_layers=1, dropout=0.5, seq_length=16):
        super().__init__()
        self.vocab_size, self.seq_length = vocab_size, seq_length
        self.end_ix = vocab_size  # column / embedding row of START = END (Lua token V+1)
        self.embed = nn.Embedding(vocab_size + 1, input_encoding_size)
        self.lstm = LSTM(input_encoding_size, rnn_size, num_layers, dropout)
        self.drop = nn.Dropout(dropout)
        self.logit = nn.Linear(rnn_size, vocab_size + 1)

    # ------------------------------------------------------------------ training
    def forward(self, feats, labels, ss_prob=0.0):
        """feats (B, E), labels (B, T) 1-based with 0 padding -> logits (B, T+2, V+1).

        With `ss_prob > 0` in training mode (scheduled sampling) each word fed in is, with that
        probability, replaced by a sample from the model's own prediction at the previous step.
        """
        B, T = labels.shape
        start = labels.new_full((B, 1), self.end_ix)
        tokens = torch.cat([start, (labels - 1).clamp(min=0)], 1)  # embedding rows, (B, T+1)
        if ss_prob <= 0 or not self.training:
            x = torch.cat([feats.unsqueeze(1), self.embed(tokens)], 1)
            out, _ = self.lstm(x)
            return self.logit(self.drop(out))
        out, state = self.lstm(feats.unsqueeze(1))
        logits = [self.logit(self.drop(out[:, 0]))]
        for t in range(T + 1):
            it = tokens[:, t]
            if t >= 1:  # a word position: maybe feed the model's own guess instead
                swap = torch.rand(B, device=it.device) < ss_prob
                if swap.any():
                    guess = torch.multinomial(F.softmax(logits[-1].detach(), -1), 1).squeeze(1)
                    it = torch.where(swap, guess, it)
            out, state = self.lstm(self.embed(it).unsqueeze(1), state)
            logits.append(self.logit(self.drop(out[:, 0])))
        return torch.stack(logits, 1)

    def loss(self, logits, labels):
        return caption_loss(logits, labels, self.end_ix)

    # ------------------------------------------------------------------ decoding
    def start(self, feats, step=None):
        """Feed the image and START: -> (log-probs of the first word (B, V+1), batch-first state).
        `step`: decode_step()'s, to do it with that step's arithmetic (in eval mode)."""
        if step is not None and not self.training:
            zeros = feats.new_zeros(feats.size(0), self.lstm.rnn.num_layers, self.lstm.rnn.hidden_size)
            _, state = step(None, (zeros, zeros), x=feats)  # the image: its word log-probs are never read
            return step(torch.full((feats.size(0),), self.end_ix, dtype=torch.long, device=feats.device), state)
        out, state = self.lstm(feats.unsqueeze(1))
        start = torch.full((feats.size(0),), self.end_ix, dtype=torch.long, device=feats.device)
        out, state = self.lstm(self.embed(start).unsqueeze(1), state)
        return F.log_softmax(self.logit(self.drop(out[:, 0])), -1), tuple(s.transpose(0, 1) for s in state)

    def step(self, ix, state):
        """One word in (columns/embedding rows, (B,)) -> (log-probs (B, V+1), state). State is batch-first."""
        h, c = (s.transpose(0, 1).contiguous() for s in state)
        out, (h, c) = self.lstm(self.embed(ix).unsqueeze(1), (h, c))
        return F.log_softmax(self.logit(self.drop(out[:, 0])), -1), (h.transpose(0, 1), c.transpose(0, 1))

    def decode_step(self):
        """`step` for a decode: in training mode `step` itself (dropout); in eval mode the same LSTM and logit
        arithmetic with each layer's two weight matrices side by side, each step's few-row matmuls done the
        way the BLAS does them fastest: one row as x @ W^T on a transposed copy, more as (W @ x^T)^T. On a
        2-core EPYC the 9,568-word logit layer took, for 1 row: F.linear 1.9 ms, x @ W^T 0.49 ms; for 2 rows
        (a beam of 2): F.linear 3.8 ms, x @ W^T 1.25 ms, (W @ x^T)^T 0.59 ms. Without autograd the rearranged
        weights are kept until a parameter changes (a live page decodes every frame with the same weights);
        with it they are made anew, so gradients reach the parameters."""
        if self.training:
            return self.step
        key = tuple((p.data_ptr(), p._version, p.device) for p in self.parameters())
        if torch.is_grad_enabled() or getattr(self, "_decode_key", None) != key:
            rnn = self.lstm.rnn
            cat = [torch.cat([getattr(rnn, f"weight_ih_l{n}"), getattr(rnn, f"weight_hh_l{n}")], 1)
                   for n in range(rnn.num_layers)]
            weights = ([(w, w.t().contiguous(), getattr(rnn, f"bias_ih_l{n}") + getattr(rnn, f"bias_hh_l{n}"))
                        for n, w in enumerate(cat)], (self.logit.weight, self.logit.weight.t().contiguous(), self.logit.bias))
            if torch.is_grad_enabled():
                self._decode_key = None
            else:
                self._decode_key, self._decode_weights = key, weights
        else:
            weights = self._decode_weights
        layers, out_layer = weights

        def linear(x, w, wt, b):
            if x.size(0) == 1:
                return torch.addmm(b, x, wt)
            return torch.addmm(b.unsqueeze(1), w, x.contiguous().t()).t().contiguous()

        def step(ix, state, x=None):
            """x: an input vector instead of word ix's embedding (start's image step: no log-probs)."""
            h, c = state  # batch-first (B, L, H)
            hs, cs = [], []
            x = self.embed(ix) if x is None else x
            for n, layer in enumerate(layers):
                x, c_n = lstm_cell(linear(torch.cat([x, h[:, n]], 1), *layer), c[:, n])
                hs.append(x)
                cs.append(c_n)
            state = torch.stack(hs, 1), torch.stack(cs, 1)
            return (None if ix is None else F.log_softmax(linear(x, *out_layer), -1)), state
        return step

    def sample(self, feats, beam_size=1, sample_max=True, temperature=1.0):
        """-> (seq LongTensor (B, seq_length): word ids, 0 from END on; logprobs (B, seq_length)).

        logprobs[b, t] is the log-probability of the token chosen at step t (END included, 0 after it).
        Beam search ignores sample_max/temperature and returns the most probable finished beam.
        """
        step = self.decode_step()
        if beam_size > 1:
            logprobs, state = self.start(feats.repeat_interleave(beam_size, 0), step)
            return beam_search(step, state, logprobs, beam_size, self.seq_length, self.end_ix)
        logprobs, state = self.start(feats, step)
        return sample_sequences(step, state, logprobs, self.seq_length, self.end_ix, sample_max, temperature)


def caption_loss(logits, labels, end_ix):
    """neuraltalk2's LanguageModelCriterion: mean NLL over every real token plus the first END.

    logits (B, T+2, V+1) where step 0 (the image step) is ignored; labels (B, T), 0-padded.
    """
    B, T = labels.shape
    logp = F.log_softmax(logits[:, 1:T + 2], -1)
    target = torch.cat([labels, labels.new_zeros(B, 1)], 1)
    is_pad = target == 0
    mask = ~is_pad | (is_pad & (is_pad.cumsum(1) == 1))
    cols = torch.where(is_pad, torch.full_like(target, end_ix), target - 1)
    nll = -logp.gather(2, cols.unsqueeze(2)).squeeze(2)
    return (nll * mask).sum() / mask.sum().clamp(min=1)


def columns_to_seq(cols, end_ix):
    """Output columns (word k at k-1, END at end_ix) -> 1-based word ids with 0 from the first END on."""
    ended = (cols == end_ix).long().cumsum(-1) > 0
    return torch.where(ended, torch.zeros_like(cols), cols + 1)


def sample_sequences(step, state, logprobs, seq_length, end_ix, sample_max=True, temperature=1.0):
    """Greedy (sample_max) or temperature sampling, batched. Keeps the graph (SCST needs the log-probs).

    step(ix, state) -> (logprobs, state); `logprobs` (B, V+1) is the first word's distribution.
    """
    B = logprobs.size(0)
    done = torch.zeros(B, dtype=torch.bool, device=logprobs.device)
    cols, lps = [], []
    for t in range(seq_length):
        if sample_max:
            lp, ix = logprobs.max(1)
        else:
            ix = torch.multinomial(F.softmax(logprobs.detach() / temperature, -1), 1).squeeze(1)
            lp = logprobs.gather(1, ix.unsqueeze(1)).squeeze(1)
        ix = torch.where(done, torch.full_like(ix, end_ix), ix)
        cols.append(ix)
        lps.append(lp * (~done))
        done = done | (ix == end_ix)
        if t == seq_length - 1 or bool(done.all()):
            break
        logprobs, state = step(ix, state)
    cols = torch.stack(cols, 1)
    lps = torch.stack(lps, 1)
    pad = seq_length - cols.size(1)
    if pad:
        cols = F.pad(cols, (0, pad), value=end_ix)
        lps = F.pad(lps, (0, pad))
    return columns_to_seq(cols, end_ix), lps


def beam_search(step, state, logprobs, beam_size, seq_length, end_ix):
    """Batched beam search over B images x K beams (rows b*K + k); returns the best beam per image.

    `state` is a tuple of batch-first tensors and `logprobs` (B*K, V+1), all already expanded K times
    (e.g. with repeat_interleave). A beam that emitted END is frozen (its only continuation is END at
    no cost), so it keeps its score and competes with the others until the end, as the Lua
    done_beams list did; beams cut at seq_length compete too. No length penalty (as neuraltalk2).
    """
    BK, V1 = logprobs.shape
    K = beam_size
    B = BK // K
    dev = logprobs.device
    score = torch.full((B, K), float("-inf"), device=dev)
    score[:, 0] = 0.0  # all K beams start identical: expand only the first
    done = torch.zeros(B, K, dtype=torch.bool, device=dev)
    frozen = torch.full((V1,), float("-inf"), device=dev)
    frozen[end_ix] = 0.0
    cols = torch.zeros(B, K, 0, dtype=torch.long, device=dev)
    lps = torch.zeros(B, K, 0, device=dev)
    offsets = torch.arange(B, device=dev).unsqueeze(1) * K
    for t in range(seq_length):
        lp = torch.where(done.unsqueeze(2), frozen, logprobs.view(B, K, V1))
        top, flat = (score.unsqueeze(2) + lp).view(B, -1).topk(K, 1)
        beam, ix = flat // V1, flat % V1
        token_lp = lp.view(B, -1).gather(1, flat)
        cols = torch.cat([cols.gather(1, beam.unsqueeze(2).expand(-1, -1, t)), ix.unsqueeze(2)], 2)
        lps = torch.cat([lps.gather(1, beam.unsqueeze(2).expand(-1, -1, t)), token_lp.unsqueeze(2)], 2)
        done = done.gather(1, beam) | (ix == end_ix)
        score = top
        if t == seq_length - 1 or bool(done.all()):
            break
        rows = (beam + offsets).view(-1)
        state = tuple(s.index_select(0, rows) for s in state)
        logprobs, state = step(ix.view(-1), state)
    best = score.argmax(1)
    pick = best.view(B, 1, 1).expand(-1, 1, cols.size(2))
    cols, lps = cols.gather(1, pick).squeeze(1), lps.gather(1, pick).squeeze(1)
    lps = torch.where(torch.isfinite(lps), lps, torch.zeros_like(lps))
    pad = seq_length - cols.size(1)
    if pad:
        cols = F.pad(cols, (0, pad), value=end_ix)
        lps = F.pad(lps, (0, pad))
    return columns_to_seq(cols, end_ix), lps
