"""Preprocess a dialog corpus into DIR/corpus.h5 + vocab.json (train.py does this itself when needed).

    python corpus.py --corpus ../../shared/data/dgk_lost_conv --dataDir data/dgk --tokens char --vocabSize 4000

Takes the same corpus options as train.py (one definition, `chatbot.prep.CorpusOpts`), so a corpus
built here with a given --seed or --context is reused, not rebuilt, by train.py with the same flags.
"""
from chatbot.prep import CorpusOpts, prepare
from common.cli import parse, run


def main(opt):
    return prepare(opt)


if __name__ == "__main__":
    run(main, parse(CorpusOpts))
