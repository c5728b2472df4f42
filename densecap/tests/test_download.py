import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from common import t7
from common.browser import serve_folder
from common.cli import parse
from densecap import run_model
from densecap.tests.t7_fixture import make_t7_model

DENSECAP = Path(__file__).parents[1]


def test_download_model_sh_against_a_local_server(tmp_path, shapes_dir):
    served = tmp_path / "served"
    served.mkdir()
    t7.save(tmp_path / "densecap-pretrained-vgg16.t7", make_t7_model()[0], tensor_type="torch.CudaTensor")
    with zipfile.ZipFile(served / "densecap-pretrained-vgg16.t7.zip", "w") as z:
        z.write(tmp_path / "densecap-pretrained-vgg16.t7", "densecap-pretrained-vgg16.t7")
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
    img = str(sorted(shapes_dir.iterdir())[0])
    res = run_model.main(parse(run_model.RunOptions, ["-checkpoint", str(dest / "densecap-pretrained-vgg16.t7"),
                                                      "-input_image", img, "-gpu", "-1", "-image_size", "128",
                                                      "-output_vis_dir", str(tmp_path / "vis")]))
    assert len(res[0]["boxes"]) > 0
