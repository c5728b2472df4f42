"""`make download-models` end to end, as a user runs it, against a web server on 127.0.0.1 that serves
files written by the original Lua code under the published names, with their checksums."""
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from common import checkpoint
from common.browser import serve_folder

ROOT = Path(__file__).resolve().parents[2]


def sha256(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def md5(p):
    return hashlib.md5(Path(p).read_bytes()).hexdigest()


def site_and_env(site, out):
    """Lay out the published files (Lua-written fixtures under the real names) -> the environment pointing
    every experiment's download_model.sh at the local server, with the right checksums."""
    env = {}
    if (ROOT / "dcgan" / "download_model.sh").exists():
        fix = ROOT / "dcgan" / "tests" / "fixtures"
        (site / "dcgan").mkdir()
        for name, src in {"celebA_25_net_G.t7": fix / "dec2015" / "dec2015_1_net_G.t7",
                          "bedrooms_4_net_G.t7": fix / "today" / "netG_init.t7"}.items():
            shutil.copyfile(src, site / "dcgan" / name)
        (out / "dcgan.sums").write_text("".join(f"{sha256(site / 'dcgan' / n)}  {n}\n"
                                                for n in ("celebA_25_net_G.t7", "bedrooms_4_net_G.t7")))
        env.update(DCGAN_MODEL_URL="{url}/dcgan", DCGAN_MODEL_SUMS=str(out / "dcgan.sums"),
                   DCGAN_MODEL_DIR=str(out / "dcgan"))
    if (ROOT / "densecap" / "download_model.sh").exists():
        z = site / "densecap-pretrained-vgg16.t7.zip"
        with zipfile.ZipFile(z, "w") as f:
            f.write(ROOT / "densecap" / "tests" / "fixtures" / "densecap-small.t7", "densecap-pretrained-vgg16.t7")
        env.update(DENSECAP_MODEL_URL="{url}/densecap-pretrained-vgg16.t7.zip", DENSECAP_MODEL_SHA256=sha256(z),
                   DENSECAP_MODEL_DIR=str(out / "densecap"))
    if (ROOT / "neuraltalk" / "download_model.sh").exists():
        z = site / "neuraltalk" / "checkpoint_v1_cpu.zip"
        z.parent.mkdir()
        with zipfile.ZipFile(z, "w") as f:
            f.write(ROOT / "neuraltalk" / "tests" / "lua" / "fixtures" / "model_id1-501-1448236541.t7_cpu.t7",
                    "model_id1-501-1448236541.t7_cpu.t7")
        env.update(NEURALTALK_MODEL_URL="{url}/neuraltalk", NEURALTALK_MODEL_SHA256=sha256(z),
                   NEURALTALK_MODEL_DIR=str(out / "neuraltalk"))
    colornet = ROOT / "colorize" / "tests" / "fixtures" / "lua" / "colornet_cleared.t7"  # written by Torch7
    if (ROOT / "colorize" / "download_model.sh").exists() and colornet.exists():
        (site / "colorize").mkdir()
        for name in ("colornet.t7", "colornet_imagenet.t7"):
            shutil.copyfile(colornet, site / "colorize" / name)
        env.update(COLORIZE_MODEL_URL="{url}/colorize", COLORNET_MD5=md5(colornet),
                   COLORNET_IMAGENET_MD5=md5(colornet), COLORIZE_MODEL_DIR=str(out / "colorize"))
    return env


def test_make_download_models_fetches_checks_and_converts_every_published_model(tmp_path):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    site, out = tmp_path / "site", tmp_path / "out"
    site.mkdir(), out.mkdir()
    env = site_and_env(site, out)
    models = " ".join(e for e, var in (("colorize", "COLORIZE_MODEL_DIR"), ("dcgan", "DCGAN_MODEL_DIR"),
                                       ("densecap", "DENSECAP_MODEL_DIR"), ("neuraltalk", "NEURALTALK_MODEL_DIR"))
                      if var in env)
    make = ["make", "-s", "download-models", "NO_SETUP=1", f"PY={sys.executable}", f"MODELS={models}"]
    with serve_folder(site) as url:
        env = dict(os.environ, OMP_NUM_THREADS="1", **{k: v.format(url=url) for k, v in env.items()})
        r = subprocess.run(make, cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    if "DCGAN_MODEL_DIR" in env:
        for name in ("celebA_25", "bedrooms_4"):
            assert checkpoint.load(out / "dcgan" / f"{name}_net_G.pt", "dcgan_G")
    if "DENSECAP_MODEL_DIR" in env:
        assert sha256(out / "densecap" / "densecap-pretrained-vgg16.t7") == \
            sha256(ROOT / "densecap" / "tests" / "fixtures" / "densecap-small.t7")
    if "NEURALTALK_MODEL_DIR" in env:
        ck = checkpoint.load(out / "neuraltalk" / "neuraltalk2_coco_cpu.pt", "neuraltalk")
        assert ck["ix_to_word"]["2"] == "cat"
    if "COLORIZE_MODEL_DIR" in env:
        for name in ("colornet", "colornet_imagenet"):
            assert (out / "colorize" / f"{name}.pt").stat().st_size > 0
    # a second run finds everything there and checked, and changes nothing
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with serve_folder(site) as url2:
        env2 = dict(env, **{k: v.replace(url, url2) for k, v in env.items() if isinstance(v, str) and url in v})
        r2 = subprocess.run(make, cwd=ROOT,
                            env=env2, capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
