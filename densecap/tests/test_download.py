import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from common.browser import serve_folder
from common.cli import parse
from densecap import run_model
from densecap.tests.test_lua_fixture import FIXTURES, LUA_T7, assert_matches_lua, lua_results

DENSECAP = Path(__file__).parents[1]


def test_download_model_sh_against_a_local_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    # the file densecap's own train.lua code wrote, under the published name
    with zipfile.ZipFile(served / "densecap-pretrained-vgg16.t7.zip", "w") as z:
        z.write(LUA_T7, "densecap-pretrained-vgg16.t7")
    sha = hashlib.sha256((served / "densecap-pretrained-vgg16.t7.zip").read_bytes()).hexdigest()
    dest = tmp_path / "models"
    with serve_folder(served) as url:
        env = dict(os.environ, PY=sys.executable, DENSECAP_MODEL_DIR=str(dest),
                   DENSECAP_MODEL_URL=f"{url}/densecap-pretrained-vgg16.t7.zip", DENSECAP_MODEL_SHA256=sha)
        ok = subprocess.run(["bash", "download_model.sh"], cwd=DENSECAP, env=env, capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        assert (dest / "densecap-pretrained-vgg16.t7.zip.sha256").read_text().startswith(sha)
        bad = subprocess.run(["bash", "download_model.sh"], cwd=DENSECAP, capture_output=True, text=True,
                             env=dict(env, DENSECAP_MODEL_SHA256="0" * 64, DENSECAP_MODEL_DIR=str(tmp_path / "m2")))
        assert bad.returncode == 1 and "does not match" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        assert not list((tmp_path / "m2").iterdir())
        missing = subprocess.run(["bash", "download_model.sh"], cwd=DENSECAP, capture_output=True, text=True,
                                 env=dict(env, DENSECAP_MODEL_URL=f"{url}/nope.zip", DENSECAP_MODEL_SHA256=""))
        assert missing.returncode == 1 and "download failed" in missing.stderr
    assert (dest / "densecap-pretrained-vgg16.t7").read_bytes() == LUA_T7.read_bytes()
    res = run_model.main(parse(run_model.RunOptions, ["-checkpoint", str(dest / "densecap-pretrained-vgg16.t7"),
                                                      "-input_image", str(FIXTURES / "lua_scene_wide.png"),
                                                      "-gpu", "-1", "-image_size", "160",
                                                      "-output_vis_dir", str(tmp_path / "vis"), "-precision", "fp32"]))
    assert_matches_lua(res[0], lua_results("wide"))
