"""Corpus readers on real samples, tokenization, HDF5 preprocessing, streaming batches, bad input."""
import os

import h5py
import numpy as np
import pytest

from chatbot.batches import PairData, collate
from chatbot.prep import CorpusOpts, prepare, read_meta
from chatbot.readers import builtin_corpus, corpus_files, read_conv, read_dialogs
from chatbot.tests.conftest import DGK
from chatbot.tokens import EOS, GO, SEP, UNK, detokenize, encode, resolve_tokens, tokenize
from common.cli import UserError


def test_conv_reader_on_real_files():
    dialogs = list(read_conv(DGK / "lost.conv"))
    # data/README.md: lost.conv has 13,511 dialogues and 61,007 utterances
    assert len(dialogs) == 13511
    assert sum(len(d) for d in dialogs) == 61007
    assert dialogs[0][:2] == ["爸爸  你午饭时喝了多少酒", "你是在教训我么?"]
    assert not any("\r" in t for d in dialogs for t in d)  # CRLF stripped
    juemds = list(read_conv(DGK / "juemds.conv"))  # its `E` lines end in CRLF too
    assert (len(juemds), sum(len(d) for d in juemds)) == (5726, 27994)


def test_folder_of_conv_files_and_builtin_yaml():
    fmt, files = corpus_files(DGK)
    assert fmt == "conv" and [os.path.basename(f) for f in files] == [
        "fanzxl.conv", "haosys.conv", "juemds.conv", "laoyj.conv", "lost.conv"]
    fmt, files = corpus_files(builtin_corpus())
    assert fmt == "yaml" and len(files) == 17
    dialogs = list(read_dialogs(fmt, files))
    # reference/chatbot.md: 467 conversations, 552 consecutive pairs, 1,019 utterances
    assert len(dialogs) == 467
    assert sum(len(d) - 1 for d in dialogs) == 552
    assert sum(len(d) for d in dialogs) == 1019


def test_cornell_reader(tmp_path):
    sep = " +++$+++ "
    (tmp_path / "movie_lines.txt").write_bytes("\n".join([
        f"L1045{sep}u0{sep}m0{sep}BIANCA{sep}They do not!",
        f"L1044{sep}u2{sep}m0{sep}CAMERON{sep}They do to!",
        f"L985{sep}u0{sep}m0{sep}BIANCA{sep}I hope so.",
        f"L984{sep}u2{sep}m0{sep}CAMERON{sep}Caf\xe9 she's okay?",
    ]).encode("latin-1"))
    (tmp_path / "movie_conversations.txt").write_text(
        f"u0{sep}u2{sep}m0{sep}['L1044', 'L1045']\nu0{sep}u2{sep}m0{sep}['L984', 'L985']\n")
    fmt, files = corpus_files(tmp_path)
    assert fmt == "cornell"
    assert list(read_dialogs(fmt, files)) == [["They do to!", "They do not!"], ["Café she's okay?", "I hope so."]]
    assert tokenize("Café she's okay?", "word") == ["caf", "é", "she's", "okay", "?"]


def test_tokenizers():
    assert tokenize("我被叫来的时候", "word") == ["我", "被叫", "来", "的", "时候"]  # jieba
    assert tokenize("我被叫来的时候 OK", "char") == ["我", "被", "叫", "来", "的", "时", "候", "ok"]
    assert tokenize("畹/华/吾/侄/", "slash") == ["畹", "华", "吾", "侄"]
    assert tokenize("I don't know, Sarah.", "word") == ["i", "don't", "know", ",", "sarah", "."]
    assert detokenize(["我", "知道", "。"]) == "我知道。"
    assert detokenize(["i", "don't", "know", "."]) == "i don't know."


def test_token_mode_resolution(tmp_path):
    assert resolve_tokens("conv", [str(DGK / "lost.conv")], "auto") == ("word", "word")
    chars = tmp_path / "min.conv"  # dgk_shooter_min style: split by character
    chars.write_text("E\nM 畹/华/吾/侄/\nM 你/接/到/这/封/信/的/时/候/\n", encoding="utf-8")
    assert resolve_tokens("conv", [str(chars)], "auto") == ("slash", "char")
    words = tmp_path / "z.conv"  # dgk_shooter_z style: split into words
    words.write_text("E\nM 你/接到/这封信/的/时候/\nM 呵呵/\n", encoding="utf-8")
    assert resolve_tokens("conv", [str(words)], "auto") == ("slash", "word")
    assert resolve_tokens("conv", [str(words)], "char") == ("char", "char")


def test_unknown_words_fall_back_to_characters():
    vocab = {w: i for i, w in enumerate(["<pad>", "<go>", "<eos>", "<unknown>", "你", "好", "吗"])}
    assert encode("你好吗", "word", vocab) == [4, 5, 6]  # jieba gives 你好/吗; 你好 is unknown -> 你 好
    assert encode("你好 zebra", "word", vocab) == [4, 5, UNK]


def prep(corpus, data_dir, **settings):
    """prepare() with CorpusOpts' defaults, as `corpus.py --corpus ... --dataDir ...` would run it."""
    return prepare(CorpusOpts(corpus=str(corpus), dataDir=str(data_dir), **settings))


def _pairs_of(dialogs):
    return sum(len(d) - 1 for d in dialogs)


def test_prepare_slice_of_real_corpus(tmp_path):
    conv = DGK / "juemds.conv"
    first = []
    for d in read_conv(conv):
        first.append(d)
        if len(first) == 300:
            break
    h5 = prep(str(conv), tmp_path, dataset=300, maxExampleLen=25, valSetSize=0.1)
    meta = read_meta(h5)
    with h5py.File(h5) as f:
        n_train, n_val = len(f["train/src/offsets"]) - 1, len(f["val/src/offsets"]) - 1
        assert f.attrs["n_dialogs"] == 300
        lengths = np.diff(f["train/tgt/offsets"][...])
    assert n_train + n_val == _pairs_of(first)  # every consecutive pair of the first 300 dialogs
    assert 0 < n_val < 0.25 * (n_train + n_val)
    assert lengths.max() <= 23  # room for <go> and <eos>
    words = meta["words"]
    assert meta["words"][:5] == ["<pad>", "<go>", "<eos>", "<unknown>", "<sep>"] and meta["tokens"] == "word"
    # every pair reads back as the tokenized turns (all words are in the vocabulary here)
    expected = sorted((tuple(tokenize(q, "word")[:25]), tuple(tokenize(a, "word")[:23]))
                      for d in first for q, a in zip(d, d[1:]))
    got = []
    for split in ("train", "val"):
        data = PairData(h5, split)
        got += [(tuple(words[i] for i in data.src[k]), tuple(words[i] for i in data.tgt[k])) for k in range(len(data))]
        data.close()
    assert sorted(got) == expected

    # fresh: the second call reuses the file; new settings or a new corpus rebuild it
    mtime = os.path.getmtime(h5)
    assert prep(str(conv), tmp_path, dataset=300, valSetSize=0.1) == h5
    assert os.path.getmtime(h5) == mtime
    prep(str(conv), tmp_path, dataset=100, valSetSize=0.1)
    with h5py.File(h5) as f:
        assert f.attrs["n_dialogs"] == 100
    prep(str(DGK / "laoyj.conv"), tmp_path, dataset=100, valSetSize=0.1)
    assert read_meta(h5)["source_sha1"] != meta["source_sha1"]


def test_vocab_size_and_min_word_freq(tmp_path):
    h5 = prep(str(DGK / "juemds.conv"), tmp_path / "a", dataset=200, vocabSize=50)
    words = read_meta(h5)["words"]
    assert len(words) == 55  # 50 words + 5 specials
    h5b = prep(str(DGK / "juemds.conv"), tmp_path / "b", dataset=200, minWordFreq=3)
    with h5py.File(h5b) as f:
        ids = f["train/src/tokens"][...]
    assert ids.max() < len(read_meta(h5b)["words"])  # ids renumbered (the original's minWordFreq bug)
    assert (ids == UNK).sum() > 0


def test_batches_stream_every_pair_once_in_a_seeded_order(tmp_path):
    h5 = prep(str(DGK / "juemds.conv"), tmp_path, dataset=400)
    data = PairData(h5, "train", block_batches=4)
    n = len(data)

    def batches(epoch, skip=0):
        return [[tuple(s) + (-1,) + tuple(t) for s, t in zip(src, tgt)]
                for src, tgt in data.batches(8, epoch, seed=1, skip=skip)]

    def seen(epoch):
        return [p for b in batches(epoch) for p in b]
    e1 = seen(1)
    assert len(e1) == n and sorted(e1) == sorted(tuple(s) + (-1,) + tuple(t) for s, t in zip(
        [data.src[i] for i in range(n)], [data.tgt[i] for i in range(n)]))
    assert seen(1) == e1 and seen(2) != e1
    assert batches(1, skip=5) == batches(1)[5:]  # resume mid-epoch: the same remaining batches
    assert sum(1 for _ in data.batches(8, 1, 1)) == data.num_batches(8)
    x, lengths, y_in, y_out = collate([np.array([5, 6, 7])], [np.array([8, 9])])
    assert x.tolist() == [[7, 6, 5]] and lengths.tolist() == [3]  # reversed source
    assert y_in.tolist() == [[GO, 8, 9]] and y_out.tolist() == [[8, 9, EOS]]
    data.close()


def test_bad_corpora_give_one_clear_error(tmp_path):
    empty = tmp_path / "empty.conv"
    empty.write_text("")
    with pytest.raises(UserError, match="empty"):
        prep(str(empty), tmp_path / "d1")
    single = tmp_path / "single.conv"  # dialogs of one turn each: no pairs
    single.write_text("E\nM 你好\nE\nM 再见\n", encoding="utf-8")
    with pytest.raises(UserError, match="no dialog pairs"):
        prep(str(single), tmp_path / "d2")
    gbk = tmp_path / "gbk.conv"
    gbk.write_bytes("E\nM 你好\nM 再见\n".encode("gbk"))
    with pytest.raises(UserError, match="gbk.conv: not UTF-8"):
        prep(str(gbk), tmp_path / "d3")
    with pytest.raises(UserError, match="no such corpus"):
        prep(str(tmp_path / "missing.conv"), tmp_path / "d4")
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("categories: [x\n", encoding="utf-8")
    with pytest.raises(UserError, match="not valid YAML"):
        prep(str(bad_yaml), tmp_path / "d5")
    with pytest.raises(UserError, match="--tokens"):
        prep(str(single), tmp_path / "d6", tokens="bytes")


def test_context_feeds_the_previous_turns_to_the_encoder(tmp_path):
    conv = tmp_path / "c.conv"
    conv.write_text("E\nM 一\nM 二\nM 三\nM 四\nE\nM 五\nM 六\n", encoding="utf-8")
    h5 = prep(conv, tmp_path / "d", tokens="char", context=2, valSetSize=0)
    words = read_meta(h5)["words"]
    assert read_meta(h5)["context"] == 2 and words[SEP] == "<sep>"
    data = PairData(h5, "train")
    pairs = [("".join(words[i] for i in data.src[k]), "".join(words[i] for i in data.tgt[k])) for k in range(len(data))]
    data.close()
    # question first, then the earlier turns, most recent first, at most 2, never across dialogs
    assert pairs == [("一", "二"), ("二<sep>一", "三"), ("三<sep>二<sep>一", "四"), ("五", "六")]
    x, lengths = collate([[7, SEP, 8]])
    assert x.tolist() == [[8, SEP, 7]]  # reversed: the question's first token is read last
    h5_0 = prep(conv, tmp_path / "d0", tokens="char", valSetSize=0)
    with h5py.File(h5_0) as f:
        assert f["train/src/tokens"].shape[0] == 4  # no context: questions only
