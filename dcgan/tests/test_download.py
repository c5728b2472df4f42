"""download_model.sh against a server on 127.0.0.1 serving generators written by the original Lua code under
the published names: checksums, conversion to .pt that renders as Lua did, and a bad download."""
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from common import t7
from dcgan.checkpoints import load_generator

HERE = Path(__file__).parents[1]
FIX = Path(__file__).parent / "fixtures"
# published name -> a file the original main.lua wrote in that layout (December 2015 / today's)
SERVED = {"celebA_25_net_G.t7": FIX / "dec2015" / "dec2015_1_net_G.t7", "bedrooms_4_net_G.t7": FIX / "today" / "netG_init.t7"}


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_checks_sums_and_converts(server, tmp_path):
    root, url = server
    sums = []
    for name, src in SERVED.items():
        shutil.copyfile(src, root / name)
        sums.append(f"{hashlib.sha256((root / name).read_bytes()).hexdigest()}  {name}")
    (tmp_path / "sums").write_text("\n".join(sums) + "\n")
    env = dict(os.environ, PY=sys.executable, DCGAN_MODEL_URL=url, DCGAN_MODEL_SUMS=str(tmp_path / "sums"),
               DCGAN_MODEL_DIR=str(tmp_path / "models"), OMP_NUM_THREADS="1")
    r = subprocess.run(["bash", str(HERE / "download_model.sh")], cwd=HERE, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name, where in (("celebA_25", "dec2015"), ("bedrooms_4", "today")):
        assert (tmp_path / "models" / f"{name}_net_G.t7").read_bytes() == SERVED[f"{name}_net_G.t7"].read_bytes()
        G, _ = load_generator(str(tmp_path / "models" / f"{name}_net_G.pt"))  # the converted file
        z = torch.from_numpy(np.array(t7.load(str(FIX / where / "noise.t7"))))
        with torch.no_grad():
            out = G(z)
        assert (out - torch.from_numpy(np.array(t7.load(str(FIX / where / "output_eval.t7"))))).abs().max() < 1e-5

    # a checksum mismatch (say, an LFS pointer served instead of the file): an error and nothing written
    os.unlink(tmp_path / "models" / "bedrooms_4_net_G.t7")
    (tmp_path / "sums").write_text(sums[1].replace(sums[1][:4], "0000") + "\n")
    r = subprocess.run(["bash", str(HERE / "download_model.sh")], cwd=HERE, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "does not match the expected" in r.stderr
    assert not (tmp_path / "models" / "bedrooms_4_net_G.t7").exists()
    assert not [p for p in os.listdir(tmp_path / "models") if p.startswith(".part-")]
