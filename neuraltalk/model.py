"""Caption models: show-tell (neuraltalk2) and top-down attention (Anderson et al. 2018, the modern repos' updown).

Both read CNN features (`fc` (B, D), `att` (B, N, C)) and share one interface:
    logits = model(fc, att, labels, ss_prob, seq_per_img=5)   # (5B, T+2, V+1), loss by common.caption_lm
    seq, logprobs = model(fc, att, mode="sample", beam_size=3)  # or model.sample(...)
Tokens follow common.caption_lm: word k is row/column k-1, row/column V is START/END, 0 pads labels.
Decoding (greedy, sampling, batched beam search) is common.caption_lm's, written once for both; `banned`
output columns (the modern repos' -suppress_UNK) get log-probability -inf at every step.
"""
import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.caption_lm import LanguageModel, beam_search, caption_loss, columns_to_seq, sample_sequences
from common.device import autocast
from common.lstm import lstm_cell
from neuraltalk.choices import ALIASES, MODELS  # noqa: F401 (also imported from here)


class ShowTell(nn.Module):
    """neuraltalk2: the CNN's fc feature -> Linear + ReLU (the tail of its protos.cnn) -> LanguageModel."""

    uses_att = False
    lua_beam = False  # converted neuraltalk2 models: beam search as LanguageModel:sample_beam

    def __init__(self, vocab_size, fc_dim, att_dim=0, input_encoding_size=512, rnn_size=512, num_layers=1,
                 drop_prob_lm=0.5, seq_length=16):
        super().__init__()
        self.vocab_size, self.seq_length = vocab_size, seq_length
        self.img_embed = nn.Sequential(nn.Linear(fc_dim, input_encoding_size), nn.ReLU())
        self.lm = LanguageModel(vocab_size, input_encoding_size, rnn_size, num_layers, drop_prob_lm, seq_length)

    def forward(self, fc, att=None, labels=None, ss_prob=0.0, mode="xe", seq_per_img=1, **sample_kw):
        if mode == "sample":
            return self.sample(fc, att, **sample_kw)
        return self.lm(self.img_embed(fc).repeat_interleave(seq_per_img, 0), labels, ss_prob)

    def sample(self, fc, att=None, beam_size=1, sample_max=True, temperature=1.0, banned=()):
        feats = self.img_embed(fc)
        if beam_size > 1:
            feats = feats.repeat_interleave(beam_size, 0)
        step = self.lm.decode_step()
        logprobs, state = self.lm.start(feats, step)
        return decode(step, state, logprobs, self.seq_length, self.vocab_size, beam_size, sample_max,
                      temperature, banned, self.lua_beam)

    def loss(self, logits, labels):
        return caption_loss(logits, labels, self.vocab_size)


class TopDown(nn.Module):
    """Bottom-up/top-down captioner: an attention LSTM reads [h_lang, mean image, word] and attends over the
    regions; a language LSTM reads [attended image, h_att] and predicts the next word."""

    uses_att = True

    def __init__(self, vocab_size, fc_dim, att_dim, input_encoding_size=512, rnn_size=512, num_layers=1,
                 drop_prob_lm=0.5, seq_length=16, att_hid_size=512):
        super().__init__()
        E, H, A = input_encoding_size, rnn_size, att_hid_size
        self.vocab_size, self.seq_length, self.end_ix = vocab_size, seq_length, vocab_size
        self.embed = nn.Sequential(nn.Embedding(vocab_size + 1, E), nn.ReLU(), nn.Dropout(drop_prob_lm))
        self.fc_embed = nn.Sequential(nn.Linear(fc_dim, H), nn.ReLU(), nn.Dropout(drop_prob_lm))
        self.att_embed = nn.Sequential(nn.Linear(att_dim, H), nn.ReLU(), nn.Dropout(drop_prob_lm))
        self.ctx2att = nn.Linear(H, A)
        self.h2att = nn.Linear(H, A)
        self.alpha_net = nn.Linear(A, 1)
        self.att_lstm = nn.LSTMCell(E + 2 * H, H)
        self.lang_lstm = nn.LSTMCell(2 * H, H)
        self.drop = nn.Dropout(drop_prob_lm)
        self.logit = nn.Linear(H, vocab_size + 1)

    def prepare(self, fc, att):
        """Per-image constants: embedded fc (B, H), embedded regions (B, N, H), their attention keys (B, N, A)."""
        att_emb = self.att_embed(att)
        return self.fc_embed(fc), att_emb, self.ctx2att(att_emb)

    def core(self, it, state, consts):
        """One step: token rows `it` (B,) -> (logits (B, V+1), state); state = (h_att, c_att, h_lang, c_lang)."""
        fc_emb, att_emb, p_att = consts
        h_att, c_att, h_lang, c_lang = state
        xt = self.embed(it)
        h_att, c_att = self.att_lstm(torch.cat([h_lang, fc_emb, xt], 1), (h_att, c_att))
        scores = self.alpha_net(torch.tanh(p_att + self.h2att(h_att).unsqueeze(1))).squeeze(2)
        weights = F.softmax(scores, 1)
        att_res = torch.bmm(weights.unsqueeze(1), att_emb).squeeze(1)
        h_lang, c_lang = self.lang_lstm(torch.cat([att_res, h_att], 1), (h_lang, c_lang))
        return self.logit(self.drop(h_lang)), (h_att, c_att, h_lang, c_lang)

    def teacher_forced(self, tokens, consts):
        """The XE forward without scheduled sampling: `core` step by step, with what does not depend on the
        previous step done once for the whole sequence (the word embeddings, their and the image's share of
        the attention LSTM's input, the output layer), and each LSTM's two input products as one matmul.
        The same arithmetic as calling `core` T+1 times (test_train checks it), about 1.6x faster on a CPU."""
        fc_emb, att_emb, p_att = consts
        B, H = fc_emb.shape
        a, g = self.att_lstm, self.lang_lstm
        w_h_lang, w_fc, w_word = a.weight_ih.split([H, H, a.input_size - 2 * H], 1)
        pre = F.linear(self.embed(tokens), w_word) + F.linear(fc_emb, w_fc, a.bias_ih + a.bias_hh).unsqueeze(1)
        w_att = torch.cat([w_h_lang, a.weight_hh], 1)  # [h_lang, h_att] -> the attention LSTM's gates
        w_lang = torch.cat([g.weight_ih, g.weight_hh], 1)  # [att_res, h_att, h_lang] -> the language LSTM's
        b_lang = g.bias_ih + g.bias_hh
        w_alpha = self.alpha_net.weight.squeeze(0)
        h_att = c_att = h_lang = c_lang = fc_emb.new_zeros(B, H)
        outs = []
        for t in range(tokens.size(1)):
            h_att, c_att = lstm_cell(pre[:, t] + F.linear(torch.cat([h_lang, h_att], 1), w_att), c_att)
            scores = torch.tanh(p_att + self.h2att(h_att).unsqueeze(1)) @ w_alpha + self.alpha_net.bias
            att_res = torch.bmm(F.softmax(scores, 1).unsqueeze(1), att_emb).squeeze(1)
            h_lang, c_lang = lstm_cell(F.linear(torch.cat([att_res, h_att, h_lang], 1), w_lang, b_lang), c_lang)
            outs.append(h_lang)
        logits = self.logit(self.drop(torch.stack(outs, 1)))
        return torch.cat([logits.new_zeros(B, 1, logits.size(2)), logits], 1)  # step 0: neuraltalk2's image step

    def zero_state(self, fc):
        z = fc.new_zeros(fc.size(0), self.lang_lstm.hidden_size)
        return (z, z, z, z)

    def forward(self, fc, att=None, labels=None, ss_prob=0.0, mode="xe", seq_per_img=1, **sample_kw):
        if mode == "sample":
            return self.sample(fc, att, **sample_kw)
        B, T = labels.shape
        # embed each image once, then share it among its seq_per_img captions
        consts = tuple(c.repeat_interleave(seq_per_img, 0) for c in self.prepare(fc, att))
        tokens = torch.cat([labels.new_full((B, 1), self.end_ix), (labels - 1).clamp(min=0)], 1)
        if ss_prob <= 0 or not self.training:
            return self.teacher_forced(tokens, consts)
        state = self.zero_state(consts[0])
        logits = [fc.new_zeros(B, self.vocab_size + 1)]  # no image step: a placeholder keeps neuraltalk2's layout
        for t in range(T + 1):
            it = tokens[:, t]
            if t >= 1 and ss_prob > 0 and self.training:
                swap = torch.rand(B, device=it.device) < ss_prob
                if swap.any():
                    guess = torch.multinomial(F.softmax(logits[-1].detach(), -1), 1).squeeze(1)
                    it = torch.where(swap, guess, it)
            out, state = self.core(it, state, consts)
            logits.append(out)
        return torch.stack(logits, 1)

    def sample(self, fc, att=None, beam_size=1, sample_max=True, temperature=1.0, banned=()):
        if beam_size > 1:
            fc, att = fc.repeat_interleave(beam_size, 0), att.repeat_interleave(beam_size, 0)
        consts = self.prepare(fc, att)

        def step(it, state):
            logits, state = self.core(it, state, consts)
            return F.log_softmax(logits, -1), state

        start = torch.full((fc.size(0),), self.end_ix, dtype=torch.long, device=fc.device)
        logprobs, state = step(start, self.zero_state(fc))
        return decode(step, state, logprobs, self.seq_length, self.end_ix, beam_size, sample_max, temperature,
                      banned)

    def loss(self, logits, labels):
        return caption_loss(logits, labels, self.vocab_size)


def decode(step, state, logprobs, seq_length, end_ix, beam_size=1, sample_max=True, temperature=1.0, banned=(),
           lua_beam=False):
    """Beam search (beam_size > 1), greedy or sampled decoding from the first word's log-probs; the `banned`
    output columns get -inf at every step, so they are never chosen (unnormalised, as the modern repos)."""
    if len(banned):
        mask = logprobs.new_zeros(logprobs.size(1))
        mask[list(banned)] = float("-inf")
        inner = step

        def step(ix, state):
            lp, state = inner(ix, state)
            return lp + mask, state

        logprobs = logprobs + mask
    if beam_size > 1 and lua_beam:
        return neuraltalk2_beam_search(step, state, logprobs, beam_size, seq_length, end_ix)
    if beam_size > 1:
        return beam_search(step, state, logprobs, beam_size, seq_length, end_ix)
    return sample_sequences(step, state, logprobs, seq_length, end_ix, sample_max, temperature)


def neuraltalk2_beam_search(step, state, logprobs, beam_size, seq_length, end_ix):
    """Beam search as neuraltalk2's LanguageModel:sample_beam, one image at a time (rows b*K..b*K+K-1).

    Unlike `beam_search`, a beam that emits END stays in the beam and keeps expanding (END is fed back as
    START); each END, and every beam at the last step, is recorded as a finished caption with its running
    sum (kept in float32, candidates compared in float64, as the Lua code), and the best finished one wins.
    """
    K = beam_size
    B = logprobs.size(0) // K
    seqs = torch.zeros(B, seq_length, dtype=torch.long)
    out_lps = torch.zeros(B, seq_length)
    for b in range(B):
        rows = torch.arange(b * K, b * K + K)
        st = tuple(s.index_select(0, rows.to(s.device)) for s in state)
        lp = logprobs[b * K:b * K + K]
        beam_seq = torch.zeros(seq_length, K, dtype=torch.long)
        beam_lp = torch.zeros(seq_length, K)
        sums = torch.zeros(K)
        done = []
        for t in range(seq_length):
            lpf = lp.detach().float().cpu()
            ys, ix = torch.sort(lpf, 1, descending=True)
            cands = []
            for c in range(min(K, ys.size(1))):
                for q in range(1 if t == 0 else K):
                    r = float(ys[q, c])
                    cands.append((float(sums[q]) + r, int(ix[q, c]), q, r))
            cands.sort(key=lambda v: -v[0])
            prev_seq, prev_lp = beam_seq[:t].clone(), beam_lp[:t].clone()
            pick = []
            for vix in range(K):
                p, c, q, r = cands[vix]
                beam_seq[:t, vix], beam_lp[:t, vix] = prev_seq[:, q], prev_lp[:, q]
                beam_seq[t, vix], beam_lp[t, vix], sums[vix] = c, r, p
                pick.append(q)
                if c == end_ix or t == seq_length - 1:
                    done.append((float(sums[vix]), beam_seq[:, vix].clone(), beam_lp[:, vix].clone()))
            if t == seq_length - 1:
                break
            idx = torch.tensor(pick, device=lp.device)
            st = tuple(s.index_select(0, idx) for s in st)
            lp, st = step(beam_seq[t].to(lp.device), st)
        best = max(range(len(done)), key=lambda i: done[i][0])  # first of equals, as a stable sort
        cols, lps = done[best][1], done[best][2]
        seqs[b], out_lps[b] = columns_to_seq(cols.unsqueeze(0), end_ix)[0], lps
    return seqs.to(logprobs.device), out_lps.to(logprobs.device)


def canonical(name):
    name = ALIASES.get(name, name)
    return name


@dataclasses.dataclass
class CaptionConfig:
    """Everything that shapes a caption model: train.py builds it once from its options, the checkpoint stores
    it (`config`, a dict), eval.py, convert.py and the captioner rebuild the model from it."""
    caption_model: str = "show_tell"  # show_tell | topdown (aliases accepted, stored canonical)
    vocab_size: int = 0
    fc_dim: int = 0
    att_dim: int = 0  # 0: no attention features (show_tell)
    input_encoding_size: int = 512
    rnn_size: int = 512
    num_layers: int = 1  # show_tell's LSTM layers
    drop_prob_lm: float = 0.5
    seq_length: int = 16
    att_hid_size: int = 512  # topdown's attention MLP
    beam_search: str = "batched"  # or "neuraltalk2": LanguageModel:sample_beam, for converted .t7 models

    def __post_init__(self):
        self.caption_model = canonical(self.caption_model)
        if self.caption_model == "show_tell":  # what a model does not use is not part of it
            self.att_dim, self.att_hid_size = 0, 512
        else:
            self.num_layers = 1

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def build_model(cfg: CaptionConfig) -> nn.Module:
    """The decoder a CaptionConfig describes (ShowTell or TopDown), freshly initialised."""
    common = (cfg.vocab_size, cfg.fc_dim, cfg.att_dim, cfg.input_encoding_size, cfg.rnn_size, cfg.num_layers,
              cfg.drop_prob_lm, cfg.seq_length)
    if cfg.caption_model == "topdown":
        return TopDown(*common, att_hid_size=cfg.att_hid_size)
    model = ShowTell(*common)
    model.lua_beam = cfg.beam_search == "neuraltalk2"
    return model


def config_of_checkpoint(ck) -> CaptionConfig:
    """The checkpoint's CaptionConfig; for checkpoints written before it was stored, derived from the stored
    fields: the options (`opt`), the vocabulary, `seq_length`, and the weights' shapes (which decide the
    sizes: train.py before 2026-12 wrote -att_hid_size into `opt` but built TopDown with 512)."""
    if "config" in ck:
        return CaptionConfig.from_dict(ck["config"])
    opt, w = ck.get("opt", {}), ck["model"]
    cfg = CaptionConfig(caption_model=opt.get("caption_model", "show_tell"), vocab_size=len(ck["ix_to_word"]),
                        drop_prob_lm=float(opt.get("drop_prob_lm", 0.5)), seq_length=int(ck["seq_length"]),
                        beam_search="neuraltalk2" if opt.get("beam_search") == "neuraltalk2" else "batched")
    if cfg.caption_model == "topdown":
        cfg.rnn_size, cfg.fc_dim = w["fc_embed.0.weight"].shape
        cfg.att_dim = w["att_embed.0.weight"].shape[1]
        cfg.input_encoding_size = w["embed.0.weight"].shape[1]
        cfg.att_hid_size = w["ctx2att.weight"].shape[0]
    else:
        cfg.input_encoding_size, cfg.fc_dim = w["img_embed.0.weight"].shape
        cfg.rnn_size = w["lm.logit.weight"].shape[1]
        cfg.num_layers = sum(1 for k in w if k.startswith("lm.lstm.rnn.weight_hh_l"))
    return cfg


class CaptionModel(nn.Module):
    """What a checkpoint holds: the CNN (raw images in, or fine-tuning), the feature standardisation and the
    caption model.

    Features are standardised per dimension with statistics of the training set (buffers `fc_mean`,
    `fc_std`, `att_mean`, `att_std`; identity until set): a randomly initialised CNN's features vary by a
    few percent around a large mean, and without this the decoder first learns to ignore the image.
    """

    def __init__(self, decoder: nn.Module, cnn: nn.Module = None, config: CaptionConfig = None):
        super().__init__()
        self.decoder, self.cnn, self.config = decoder, cnn, config
        fc_dim, att_dim = (cnn.fc_dim, cnn.att_dim) if cnn is not None else (0, 0)
        self.register_buffer("fc_mean", torch.zeros(fc_dim))
        self.register_buffer("fc_std", torch.ones(fc_dim))
        self.register_buffer("att_mean", torch.zeros(att_dim))
        self.register_buffer("att_std", torch.ones(att_dim))
        self.precision = "fp32"  # the CNN's arithmetic in features(); see to_inference
        self.channels_last = False  # the CNN's layout at inference; see to_inference

    def set_feature_stats(self, fc_mean, fc_std, att_mean=None, att_std=None):
        with torch.no_grad():
            self.fc_mean.copy_(fc_mean), self.fc_std.copy_(fc_std)
            if att_mean is not None:
                self.att_mean.copy_(att_mean), self.att_std.copy_(att_std)

    def feature_stats(self):
        return {k: getattr(self, k).detach().cpu() for k in ("fc_mean", "fc_std", "att_mean", "att_std")}

    def to_inference(self, precision="fp32"):
        """Eval mode; at bf16/fp16 (common.device.resolve_precision) the CNN runs channels-last under
        autocast and hands float32 features to the decoder, which stays float32 (in bf16 a random-weight
        9,568-word decoder's beam-2 captions changed on 5 of 8 frames). The CNN's convolution and linear weights
        are kept in that dtype, the values autocast would compute from them on every call (VGG-16's fc6 alone
        is 103M weights: 0.08 of the 0.11 s a bf16 head took per frame on a 2-core EPYC)."""
        self.eval()
        self.precision = precision
        if precision != "fp32":
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            for m in self.cnn.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.to(dtype)
        self.cnn.to(memory_format=torch.channels_last)  # faster at fp32 too: ResNet-18 -24% CPU on AVX2 (BENCHMARKS)
        self.channels_last = True
        return self

    def features(self, images, finetune=False):
        """uint8 images (B, 3, H, W) -> (fc, att) through the CNN (no gradient unless fine-tuning)."""
        with torch.set_grad_enabled(finetune and torch.is_grad_enabled()):
            if self.precision == "fp32":
                if self.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                return self.cnn(images)
            with autocast(images.device, self.precision):
                fc, att = self.cnn(images.contiguous(memory_format=torch.channels_last))
            return fc.float(), None if att is None else att.float()

    def forward(self, fc, att=None, labels=None, ss_prob=0.0, mode="xe", **kw):
        """XE: features of B images and labels of B * seq_per_img captions (image k's at rows k*n..k*n+n-1)
        -> logits; mode='sample' -> (seq, logprobs), one caption per image."""
        fc = (fc - self.fc_mean) / self.fc_std
        if att is not None and self.att_mean.numel():
            att = (att - self.att_mean) / self.att_std
        return self.decoder(fc, att, labels, ss_prob, mode, **kw)
