"""Options as environment variables (the Lua scripts' style) and flags, and the rule for stray variables."""
import dataclasses
import importlib
import math
import os

import pytest

from dcgan.options import ArithmeticOptions, ConvertOptions, FidOptions, GenerateOptions, TrainOptions, cli, env_argv, parse_env


def test_defaults_are_main_lua_and_generate_lua():
    t = parse_env(TrainOptions, [], environ={})
    assert (t.dataset, t.batchSize, t.loadSize, t.fineSize, t.nz, t.ngf, t.ndf, t.nThreads, t.niter) == \
        ("lsun", 64, 96, 64, 100, 64, 64, 4, 25)
    assert (t.lr, t.beta1, t.ntrain, t.display, t.display_id, t.gpu, t.name, t.noise, t.epoch_save_modulo) == \
        (0.0002, 0.5, math.inf, 1, 10, 1, "experiment1", "normal", 1)
    g = parse_env(GenerateOptions, [], environ={})
    assert (g.batchSize, g.noisetype, g.net, g.imsize, g.noisemode, g.name, g.gpu, g.display, g.nz) == \
        (32, "normal", "", 1, "random", "generation1", 1, 1, 100)


def test_environment_sets_options_and_flags_win():
    env = {"dataset": "folder", "DATA_ROOT": "/data/x", "batchSize": "16", "PATH": "/bin", "HOME": "/root",
           "LANG": "C", "CUDA_VISIBLE_DEVICES": "0", "http_proxy": "http://p:3128", "net": "g.t7"}
    opt = parse_env(TrainOptions, ["-batchSize", "8"], environ=env)
    assert (opt.dataset, opt.DATA_ROOT, opt.batchSize) == ("folder", "/data/x", 8)  # the flag beats the variable
    assert env_argv(TrainOptions, env) == ["-DATA_ROOT", "/data/x", "-batchSize", "16", "-dataset", "folder"]


@pytest.mark.parametrize("script, variable, hint", [
    ("train", "batchsize", " (did you mean batchSize?)"),   # case slip
    ("generate", "noisemod", " (did you mean noisemode?)"),  # a letter short
    ("arithmetic", "imsze", " (did you mean imsize?)"),
    ("fid", "nsample", " (did you mean nsamples?)"),
    ("convert", "inptu", " (did you mean input?)"),
    ("train", "zzz", ""),                                     # nothing close: no hint
])
def test_a_misspelt_option_variable_is_one_line_naming_it(tmp_path, monkeypatch, capsys, script, variable, hint):
    """Every script, run as `variable=4 python <script>.py`: exit 1 and exactly this line, nothing written (the
    run would otherwise go on with the default silently); the options listed are the script's own."""
    monkeypatch.chdir(tmp_path)
    main = importlib.import_module(f"dcgan.{script}").main
    cls = {"train": TrainOptions, "generate": GenerateOptions, "arithmetic": ArithmeticOptions, "fid": FidOptions,
           "convert": ConvertOptions}[script]
    with pytest.raises(SystemExit) as e:
        cli(main, cls, [], {variable: "4", "PATH": "/bin", "HOME": str(tmp_path), "http_proxy": "x", "net": "g.pt"})
    err = capsys.readouterr().err.splitlines()
    assert e.value.code == 1 and len(err) == 1, err
    head, listed = err[0].split("; options are: ")
    assert head == f"error: unknown option {variable}='4' in the environment{hint}"
    assert set(listed.split()) == {f.name for f in dataclasses.fields(cls)}
    assert os.listdir(tmp_path) == []


def test_bad_values_are_rejected_by_the_parser():
    with pytest.raises(SystemExit):
        parse_env(GenerateOptions, [], environ={"noisemode": "zigzag"})
    with pytest.raises(SystemExit):
        parse_env(TrainOptions, [], environ={"batchSize": "many"})
