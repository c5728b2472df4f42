"""download_model.sh against a web server on 127.0.0.1 serving a small neuraltalk2-style checkpoint zip."""
import hashlib
import os
import subprocess
import sys
import zipfile

from common import checkpoint
from common.browser import serve_folder
from neuraltalk.tests.conftest import NEURALTALK


def test_download_model_checks_the_checksum_and_converts(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    lua_file = NEURALTALK / "tests" / "lua" / "fixtures" / "model_id1-501-1448236541.t7_cpu.t7"  # Lua-written
    with zipfile.ZipFile(site / "checkpoint_v1_cpu.zip", "w") as z:
        z.write(lua_file, "model_id1-501-1448236541.t7_cpu.t7")
    sha = hashlib.sha256((site / "checkpoint_v1_cpu.zip").read_bytes()).hexdigest()
    with serve_folder(site) as url:
        env = dict(os.environ, PY=sys.executable, NEURALTALK_MODEL_URL=url, NEURALTALK_MODEL_DIR=str(tmp_path / "m1"),
                   NEURALTALK_MODEL_SHA256="0" * 64)
        bad = subprocess.run(["bash", str(NEURALTALK / "download_model.sh")], env=env, capture_output=True, text=True)
        assert bad.returncode == 1 and f"has sha256 {sha}, expected 000" in bad.stderr
        assert not (tmp_path / "m1" / "checkpoint_v1_cpu.zip").exists()
        env["NEURALTALK_MODEL_SHA256"] = sha
        ok = subprocess.run(["bash", str(NEURALTALK / "download_model.sh")], env=env, capture_output=True, text=True,
                            cwd=NEURALTALK)
        assert ok.returncode == 0, ok.stderr
    ck = checkpoint.load(tmp_path / "m1" / "neuraltalk2_coco_cpu.pt", "neuraltalk")
    assert ck["ix_to_word"]["2"] == "cat" and ck["ix_to_word"]["12"] == "UNK" and ck["opt"]["caption_model"] == "show_tell"
