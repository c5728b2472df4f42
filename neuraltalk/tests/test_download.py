"""download_model.sh (what `make download-models` runs) end to end against a web server on 127.0.0.1 serving
the Lua-written neuraltalk2 checkpoints zipped under the published names, with their checksums."""
import hashlib
import os
import subprocess
import sys
import zipfile

import pytest

from common import checkpoint, t7
from common.browser import serve_folder
from common.cli import parse
from neuraltalk import eval as nt_eval
from neuraltalk.tests.conftest import NEURALTALK

FIX = NEURALTALK / "tests" / "lua" / "fixtures"
# the published zips and the .t7 each holds (karpathy/neuraltalk2 README); here the small Lua-written files
PUBLISHED = {"cpu": ("checkpoint_v1_cpu.zip", "model_id1-501-1448236541.t7_cpu.t7", "cpu"),
             "gpu": ("checkpoint_v1.zip", "model_id1-501-1448236541.t7", "train")}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    sums = {}
    for variant, (zip_name, t7_name, _) in PUBLISHED.items():
        with zipfile.ZipFile(site / zip_name, "w") as z:
            z.write(FIX / t7_name, t7_name)
        sums[variant] = hashlib.sha256((site / zip_name).read_bytes()).hexdigest()
    with serve_folder(site) as url:
        yield url, sums


def download(url, dest, variant, sha):
    env = dict(os.environ, PY=sys.executable, NEURALTALK_MODEL_URL=url, NEURALTALK_MODEL_DIR=str(dest),
               NEURALTALK_VARIANT=variant, NEURALTALK_MODEL_SHA256=sha)
    return subprocess.run(["bash", "download_model.sh"], env=env, capture_output=True, text=True, cwd=NEURALTALK)


def test_a_wrong_checksum_keeps_nothing(site, tmp_path):
    url, sums = site
    bad = download(url, tmp_path / "m", "cpu", "0" * 64)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith(f"error: {url}/checkpoint_v1_cpu.zip: sha256 {sums['cpu'][:16]}")
    assert os.listdir(tmp_path / "m") == []  # no partial file, nothing under the final name


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_download_convert_and_caption_as_lua(site, tmp_path, variant):
    url, sums = site
    dest = tmp_path / "m"
    ok = download(url, dest, variant, sums[variant])
    assert ok.returncode == 0, ok.stderr
    zip_name, t7_name, which = PUBLISHED[variant]
    assert (dest / zip_name).exists() and (dest / t7_name).exists()
    pt = dest / f"neuraltalk2_coco_{variant}.pt"
    ck = checkpoint.load(pt, "neuraltalk")
    assert ck["opt"]["converted_from"] == str(dest / t7_name) and ck["config"]["caption_model"] == "show_tell"
    # the converted download captions the fixture photos as neuraltalk2's eval path did
    opt = parse(nt_eval.EvalOptions, ["-model", str(pt), "-image_folder", str(FIX / "images"), "-gpuid", "-1",
                                      "-beam_size", "2", "-suppress_UNK", "0", "-dump_images", "0", "-dump_json", "0"])
    preds, _ = nt_eval.main(opt)
    lua = t7.load(FIX / "lua_outputs.t7")
    theirs = {f.decode(): c.decode() for f, c in zip(lua[b"files"], lua[which.encode()][b"beam2_captions"])}
    assert {p["file_name"]: p["caption"] for p in preds} == theirs
    # run again: the zip already there with the right checksum is kept, not fetched twice
    again = download(url, dest, variant, sums[variant])
    assert again.returncode == 0 and "already there, checksum ok" in again.stdout
