"""generate.py's bad input as users meet it: one line on stderr, exit status 1, no image written."""
import os

import pytest

from common import checkpoint
from dcgan import generate as gen
from dcgan.options import GenerateOptions, cli


@pytest.mark.parametrize("case, says", [
    ("a discriminator", "expected a dcgan_G one"),
    ("not a checkpoint", "x_net_G.t7"),
    ("missing net", "no such file"),
    ("imsize too large", "lower imsize or batchSize"),
    ("linefull with batchSize 4", "needs batchSize=1"),
])
def test_bad_input_is_one_line(net, tmp_path, capsys, case, says):
    env = {"net": net, "gpu": "0", "name": str(tmp_path / "out"), "PATH": "/bin"}
    if case == "a discriminator":
        checkpoint.save(tmp_path / "x_1_net_D.pt", "dcgan_D", {"model": {}})
        env["net"] = str(tmp_path / "x_1_net_D.pt")
    elif case == "not a checkpoint":
        (tmp_path / "x_net_G.t7").write_text("not torch")
        env["net"] = str(tmp_path / "x_net_G.t7")
    elif case == "missing net":
        env["net"] = str(tmp_path / "nope.pt")
    elif case == "imsize too large":
        env.update(imsize="100000", batchSize="64")
    else:
        env.update(noisemode="linefull", batchSize="4", imsize="3")
    with pytest.raises(SystemExit) as e:
        cli(gen.main, GenerateOptions, [], env)
    err = capsys.readouterr().err.splitlines()
    assert e.value.code == 1 and len(err) == 1 and says in err[0], err
    assert not os.path.exists(tmp_path / "out.png")
