"""`make download-data`: the real data sets the tests, benchmarks and demos use, from their public
origins (raw GitHub files at fixed commits, listed with their sha256 in data/manifest.tsv; see
data/README.md), into the data root (`common.datasets`: $TORCH_CLASSICS_DATA, else data/).

    python -m common.download_data                   # every set
    python -m common.download_data tinyshakespeare wangfeng -dest charrnn/data

`TORCH_CLASSICS_DATA_MIRROR=http://host/prefix` replaces https://raw.githubusercontent.com (a mirror,
or the tests' server on 127.0.0.1).
"""
import argparse
import json
import os
import string
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import datasets
from common.cli import UserError, run
from common.download import digest, fetch

MANIFEST = datasets.REPO / "data" / "manifest.tsv"
GITHUB = "https://raw.githubusercontent.com"


def read_manifest(path=MANIFEST):
    sets = defaultdict(list)
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, rel, source, sha, size = line.split("\t")
        sets[name].append((rel, source, sha or None, int(size)))
    return sets


def _url(source):
    mirror = os.environ.get("TORCH_CLASSICS_DATA_MIRROR")
    return source.replace(GITHUB, mirror.rstrip("/"), 1) if mirror else source


def build_flickr8k_json(folder: Path) -> dict:
    """dataset_flickr8k.json (Karpathy's format) for the images in folder/images, from the Kaggle
    captions.txt and the official split lists in folder/_source (rules: data/README.md)."""
    src = folder / "_source"
    names = sorted(p.name for p in (folder / "images").glob("*.jpg"))
    caps = defaultdict(list)
    for line in (src / "captions.txt").read_text(encoding="utf-8").splitlines()[1:]:
        if "," in line:
            img, cap = line.split(",", 1)
            caps[img].append(cap.strip())
    split_of = {}
    for sp, name in (("train", "train"), ("dev", "val"), ("test", "test")):
        for n in (src / f"Flickr_8k.{sp}Images.txt").read_text().split():
            split_of.setdefault(n, name)
    drop = str.maketrans("", "", string.punctuation)
    images, sentid = [], 0
    for imgid, n in enumerate(names):
        sents = []
        for raw in caps[n]:
            sents.append({"tokens": raw.lower().translate(drop).split(), "raw": raw, "imgid": imgid, "sentid": sentid})
            sentid += 1
        images.append({"sentids": [s["sentid"] for s in sents], "imgid": imgid, "sentences": sents,
                       "split": split_of.get(n, "train"), "filename": n, "filepath": "images"})
    return {"dataset": "flickr8k", "images": images}


def download_set(name, files, dest: Path):
    folder = dest / name
    jobs = [(rel, src, sha) for rel, src, sha, _ in files if src != "generated"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda j: fetch(_url(j[1]), folder / j[0], sha256=j[2], quiet=True), jobs))
    for rel, src, sha, _ in files:
        if src == "generated":  # only flickr8k's json
            out = folder / rel
            tmp = out.with_name(".tmp-" + out.name)
            tmp.write_text(json.dumps(build_flickr8k_json(folder)), encoding="utf-8")
            os.replace(tmp, out)
            if sha and digest(out) != sha:
                print(f"warning: {out} differs from the project's copy (sha256); the captions upstream changed?")
    print(f"{name}: {len(files)} files in {folder}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", help="set names (default: all)")
    ap.add_argument("-dest", "--dest", default=None, help="folder (default: the data root)")
    a = ap.parse_args(argv)
    manifest = read_manifest()
    unknown = [s for s in a.sets if s not in manifest]
    if unknown:
        raise UserError(f"unknown data set {unknown[0]!r}; known: {', '.join(sorted(manifest))}")
    dest = Path(a.dest) if a.dest else datasets.data_root()
    for name in a.sets or sorted(manifest):
        download_set(name, manifest[name], dest)


if __name__ == "__main__":
    run(main)
