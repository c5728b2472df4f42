"""Options as environment variables (the Lua scripts' style) and flags, and the rule for stray variables."""
import math

import pytest

from common.cli import UserError
from dcgan.options import GenerateOptions, TrainOptions, env_argv, parse_env


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


def test_unknown_option_like_variable_is_one_clear_error():
    with pytest.raises(UserError, match=r"unknown option batchsize='4' in the environment \(did you mean batchSize\?\)"):
        env_argv(TrainOptions, {"batchsize": "4"})
    with pytest.raises(UserError, match="noisemod"):
        env_argv(GenerateOptions, {"noisemod": "line"})


def test_bad_values_are_rejected_by_the_parser():
    with pytest.raises(SystemExit):
        parse_env(GenerateOptions, [], environ={"noisemode": "zigzag"})
    with pytest.raises(SystemExit):
        parse_env(TrainOptions, [], environ={"batchSize": "many"})
