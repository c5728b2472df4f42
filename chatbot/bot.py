"""A trained chatbot loaded from model.pt, answering text: what eval.py and server.py talk through."""
import torch

from chatbot.batches import collate
from chatbot.model import Seq2Seq, Seq2SeqConfig
from chatbot.tokens import detokenize, encode, with_context
from common import checkpoint


class Chatbot:
    """A loaded model that answers text. Holds no per-conversation state (the caller passes the
    previous turns for a model trained with --context), so threads may share it."""

    def __init__(self, path, device="cpu", beam=1, max_length=20, temperature=0.0, seed=None):
        ck = checkpoint.load(path, "chatbot", map_location=device)
        self.cfg = Seq2SeqConfig.from_dict(ck["config"])
        self.model = Seq2Seq(self.cfg).to(device).eval()
        self.model.load_state_dict(ck["model"])
        self.words = ck["words"]
        self.word_to_id = {w: i for i, w in enumerate(self.words)}
        self.input_tokens, self.unit, self.source_sha1 = ck["input_tokens"], ck["unit"], ck["source_sha1"]
        self.context, self.max_input = ck.get("context", 0), ck.get("max_len", 25)
        self.device, self.beam, self.max_length, self.temperature = device, beam, max_length, temperature
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def reply_ids(self, ids, trace=None):
        x, lengths = collate([ids], device=self.device)
        return self.model.generate(x, lengths, self.max_length, self.beam, temperature=self.temperature,
                                   generator=self.generator, trace=trace)

    def reply(self, text, history=(), trace=None):
        """The reply to `text`; `history` holds the turns before it, oldest first (only the last
        `context` of them are read, and only by a model trained with --context)."""
        ids = encode(text, self.input_tokens, self.word_to_id)
        if not ids:
            return ""
        if self.context:
            previous = [encode(t, self.input_tokens, self.word_to_id) for t in list(history)[-self.context:]]
            ids = with_context(ids, [p for p in previous if p], self.max_input)
        return detokenize(self.words[i] for i in self.reply_ids(ids, trace))
