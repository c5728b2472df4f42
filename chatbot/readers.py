"""Dialog corpora as streams of dialogs (lists of non-empty turn strings); a pair is two consecutive turns.

  .conv          `E` starts a dialog, `M <text>` is one turn (dgk_lost_conv, xiaohuangji, shooter)
  Cornell        movie_lines.txt + movie_conversations.txt (neuralconvo's English corpus)
  chatterbot     YAML `conversations:` lists (its Chinese files are the built-in default corpus)
"""
import glob
import re
from pathlib import Path

from common.cli import UserError


def builtin_corpus() -> str:
    """chatterbot-corpus's Chinese YAML folder: the offline default corpus."""
    import chatterbot_corpus
    return str(Path(chatterbot_corpus.__file__).parent / "data" / "chinese")


def corpus_files(path):
    """(format, files) for a corpus path: a .conv file or folder, a Cornell folder, or chatterbot YAML."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such corpus file or folder (give --corpus a .conv file or folder, "
                        "a Cornell movie-dialogs folder, or chatterbot YAML)")
    if p.is_file():
        if p.suffix in (".yml", ".yaml"):
            return "yaml", [str(p)]
        return "conv", [str(p)]
    if (p / "movie_lines.txt").exists() and (p / "movie_conversations.txt").exists():
        return "cornell", [str(p / "movie_lines.txt"), str(p / "movie_conversations.txt")]
    for fmt, pattern in (("conv", "*.conv"), ("yaml", "*.yml"), ("yaml", "*.yaml")):
        files = sorted(glob.glob(str(p / pattern)))
        if files:
            return fmt, files
    raise UserError(f"{path}: folder holds no .conv files, no chatterbot .yml files and no Cornell "
                    "movie_lines.txt/movie_conversations.txt")


def _lines(path, encoding="utf-8"):
    """Lines of a text file without line endings (CRLF too); non-UTF-8 bytes give one clear error."""
    try:
        with open(path, encoding=encoding, newline="") as f:
            for line in f:
                yield line.rstrip("\r\n").rstrip("\r")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (bad byte at offset {e.start}); convert it first, "
                        "e.g. `iconv -f GBK -t UTF-8 in.conv > out.conv`") from None


def read_conv(path):
    dialog = []
    for line in _lines(path):
        if line.strip() == "E":
            if dialog:
                yield dialog
            dialog = []
        elif line.startswith("M"):
            text = line[2:].strip()  # the original reads the text from byte 3 on
            if text:
                dialog.append(text)
    if dialog:
        yield dialog


def read_cornell(lines_path, conversations_path):
    sep = " +++$+++ "
    text = {}
    for line in _lines(lines_path, encoding="iso-8859-1"):  # the Cornell release is Latin-1
        parts = line.split(sep)
        if len(parts) == 5:
            text[parts[0]] = parts[4].strip()
    for line in _lines(conversations_path, encoding="iso-8859-1"):
        parts = line.split(sep)
        if len(parts) == 4:
            ids = re.findall(r"L\d+", parts[3])
            dialog = [text[i] for i in ids if text.get(i)]
            if dialog:
                yield dialog


def read_yaml(path):
    import yaml
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; convert it first") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    convs = doc.get("conversations") if isinstance(doc, dict) else None
    if not isinstance(convs, list):
        raise UserError(f"{path}: no `conversations:` list (expected chatterbot-corpus YAML)")
    for conv in convs:
        if isinstance(conv, list):
            dialog = [str(t).strip() for t in conv if t is not None and str(t).strip()]
            if dialog:
                yield dialog


def read_dialogs(fmt, files):
    if fmt == "cornell":
        yield from read_cornell(*files)
        return
    reader = read_conv if fmt == "conv" else read_yaml
    for path in files:
        yield from reader(path)
