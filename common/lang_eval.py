"""Caption metrics through pycocoevalcap, with the scorer list built here (coco-caption's names).

`COCOEvalCap.evaluate()` always constructs SPICE, which downloads CoreNLP (~385 MB) and needs Java 8;
we build BLEU-1..4, METEOR, ROUGE-L and CIDEr-D ourselves so that SPICE is optional and never blocks.
The PTB tokenizer and METEOR are Java programs (jars shipped with pycocoevalcap): without `java` on
the PATH every entry point here raises one UserError line saying what to install.

`CIDEr` is CIDEr-D (sigma 6, clipping) with document frequencies taken from the references being
scored, so numbers on different subsets are not comparable (as in coco-caption).
"""
import atexit
import contextlib
import shutil
import sys
import warnings

from common.cli import UserError


def require_java(what="caption metrics"):
    if shutil.which("java") is None:
        raise UserError(f"{what} need Java (pycocoevalcap runs the PTB tokenizer and METEOR as jars): "
                        "install a JRE, e.g. `apt-get install default-jre-headless`")


def ptb_tokenize(captions: dict) -> dict:
    """{id: [str, ...]} -> the same with coco-caption's PTB tokenization (lowercase, punctuation gone).

    Empty strings are kept as "" (the jar drops empty trailing lines, which would misalign the ids).
    """
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    require_java()
    todo = {k: [{"caption": c} for c in v if c.strip()] for k, v in captions.items()}
    todo = {k: v for k, v in todo.items() if v}
    done = PTBTokenizer().tokenize(todo) if todo else {}
    out = {}
    for k, v in captions.items():
        toks = iter(done.get(k, []))
        out[k] = [next(toks) if c.strip() else "" for c in v]
    return out


def _tokenize_pairs(gts, res):
    """Both sides through one PTB tokenizer run (each jar start costs about a second)."""
    both = ptb_tokenize({**{("g", k): v for k, v in gts.items()}, **{("r", k): v for k, v in res.items()}})
    return {k: both[("g", k)] for k in gts}, {k: both[("r", k)] for k in res}


def score(refs: dict, hyps: dict, spice: bool = False) -> dict:
    """refs {id: [reference str, ...]}, hyps {id: str} -> {'Bleu_1'.. 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr'}.

    Only ids in `hyps` are scored; each needs references. SPICE is added only when asked and working;
    any failure there (no download, Java >= 9) is a warning, never an error.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if not hyps:
        raise UserError("no captions to score")
    missing = [i for i in hyps if not refs.get(i)]
    if missing:
        raise UserError(f"{len(missing)} captioned image(s) have no reference captions (e.g. id {missing[0]!r})")
    require_java()
    gts, res = _tokenize_pairs({i: list(refs[i]) for i in hyps}, {i: [hyps[i]] for i in hyps})
    out = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"Bleu_{n + 1}": float(b) for n, b in enumerate(bleu)})
    out["METEOR"] = _meteor(gts, res)[0]
    out["ROUGE_L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    if spice:
        try:
            from pycocoevalcap.spice.spice import Spice
            out["SPICE"] = float(Spice().compute_score(gts, res)[0])
        except Exception as e:  # noqa: BLE001 - SPICE is optional by design
            warnings.warn(f"SPICE skipped ({type(e).__name__}: {str(e)[:120]})")
            print(f"note: SPICE skipped ({type(e).__name__})", file=sys.stderr)
    return out


_METEOR = None


def _meteor_process():
    """One METEOR jar per Python process: it takes ~15 s to load its paraphrase tables, then answers fast."""
    global _METEOR
    from pycocoevalcap.meteor.meteor import Meteor

    if _METEOR is None or _METEOR.meteor_p.poll() is not None:
        _METEOR = Meteor()
        atexit.register(_close_meteor, _METEOR)
    return _METEOR


def _close_meteor(m):
    with contextlib.suppress(Exception):
        m.meteor_p.stdin.close()
        m.meteor_p.wait(timeout=5)


def _meteor(gts, res):
    # the jar reads '|||' as a field separator and a newline as the end of a request
    clean = lambda s: " ".join(s.replace("|||", " ").split())  # noqa: E731
    gts = {k: [clean(s) for s in v] for k, v in gts.items()}
    res = {k: [clean(s) for s in v] for k, v in res.items()}
    total, per = _meteor_process().compute_score(gts, res)
    return float(total), [float(s) for s in per]


def meteor_score_pairs(candidates: list, references: list) -> list:
    """Per-pair METEOR: candidates[i] scored against references[i] (a list of strings), PTB-tokenized."""
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    if not candidates:
        return []
    require_java("METEOR")
    gts, res = _tokenize_pairs({i: list(r) for i, r in enumerate(references)},
                               {i: [c] for i, c in enumerate(candidates)})
    return _meteor(gts, res)[1]
