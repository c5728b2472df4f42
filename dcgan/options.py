"""Options of every dcgan script, settable as in dcgan.torch (`batchSize=64 python train.py`) or as flags.

The Lua scripts read every option from an environment variable of the same name. We do the same on top
of common.cli: environment entries whose names are options become flags placed *before* the command
line's own flags, so a flag wins over an environment variable.

Which environment variables count as options (the rule, so that PATH or HOME never do):
  * a variable named exactly like an option of the script being run is that option;
  * a variable named like an option of another dcgan script (say `net` when running train.py) is left
    alone, so one shell can export the options of several scripts;
  * any other variable whose name starts with a lowercase letter and is made of letters, digits and
    underscores looks like a misspelt option (the originals' options are all lowerCamelCase) and is
    an error naming it, except the usual lowercase system variables (http_proxy and friends, which end
    in `_proxy`, and those listed in ORDINARY). Upper-case variables (PATH, HOME, CUDA_VISIBLE_DEVICES,
    ...) are never options, except DATA_ROOT, which main.lua reads too.
"""
import dataclasses
import difflib
import math
import os
import re

from common.cli import UserError, flag, options, parse, run

ORDINARY = {"no_proxy", "http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "rsync_proxy", "ssh_auth_sock"}
_OPTION_LIKE = re.compile(r"^[a-z][A-Za-z0-9_]*$")


@options
class TrainOptions:
    """Train a DCGAN (dcgan.torch's main.lua). Options are flags (-batchSize 64) or environment variables
    (batchSize=64 python train.py)."""
    dataset: str = flag("lsun", "folder | imagenet | lsun (LSUN's LMDBs, as donkey_lsun.lua, or images "
                                "exported to a folder) | celebA "
                                "(img_align_celeba, face-cropped on the fly) | mnist (IDX files)",
                        choices=["folder", "imagenet", "lsun", "celebA", "mnist"])
    DATA_ROOT: str = flag("", "the data folder (main.lua reads it from the DATA_ROOT variable); lsun: a "
                              "<class>_train_lmdb folder, or a folder holding them (or their train/)")
    lsun_class: str = flag("bedroom", "lsun: the <class>_train_lmdb databases under DATA_ROOT to train on, "
                                      "comma-separated (each a class, drawn uniformly), or all")
    batchSize: int = flag(64, "images per batch", min=1)
    loadSize: int = flag(96, "the shorter side of each image is scaled to this before the random crop", min=1)
    fineSize: int = flag(64, "training image size: 32, 64 or 128 (the networks grow by layers)", min=1)
    nz: int = flag(100, "number of dimensions of the noise vector z", min=1)
    ngf: int = flag(64, "generator filters in the last transposed-convolution block", min=1)
    ndf: int = flag(64, "discriminator filters in the first convolution", min=1)
    nThreads: int = flag(4, "data loading worker processes (0 = load in the training process)", min=0)
    niter: int = flag(25, "number of epochs to train for", min=1)
    lr: float = flag(0.0002, "initial learning rate for Adam")
    beta1: float = flag(0.5, "momentum term of Adam")
    ntrain: float = flag(math.inf, "images per epoch at most (an epoch is ceil(min(N, ntrain)/batchSize) "
                                   "random batches drawn with replacement, as the original)", min=1)
    display: int = flag(1, "1 = write a fixed-noise sample grid <checkpoints_dir>/<name>_samples.png every "
                           "display_every iterations (instead of the display server); 0 = off")
    display_id: int = flag(10, "accepted for compatibility (the display server's window id); unused")
    display_every: int = flag(10, "iterations between sample grids (the original refreshed every 10)", min=0)
    gpu: int = flag(1, "GPU to use, 1-based as the original; 0 = CPU", min=0)
    name: str = flag("experiment1", "experiment name: checkpoints are <checkpoints_dir>/<name>_<epoch>_net_G.pt")
    noise: str = flag("normal", "noise distribution: normal N(0,1) or uniform U(-1,1)", choices=["normal", "uniform"])
    epoch_save_modulo: int = flag(1, "save checkpoints every this many epochs", min=1)
    # beyond the original
    seed: int = flag(0, "random seed; 0 = a fresh random seed each run, printed (the original's behaviour)")
    nc: int = flag(0, "image channels: 0 = 1 for mnist, 3 otherwise; 1 trains on grayscale")
    flip: int = flag(1, "1 = random horizontal flips as the original; 0 = none (digits, text)")
    checkpoints_dir: str = flag("checkpoints", "folder for checkpoints and sample grids")
    resume: str = flag("", "continue exactly from a <name>_<epoch>_net_G.pt (its _net_D.pt must sit beside it)")
    amp: int = flag(1, "1 = bfloat16 mixed precision where the hardware has it (CUDA, CPUs with AVX512-BF16/AMX)")
    print_every: int = flag(1, "iterations between log lines (the original logged every iteration)", min=0)
    max_time: float = flag(0, "stop (and save) after this many wall seconds; 0 = no limit", min=0)
    max_cpu_time: float = flag(0, "stop (and save) after this many CPU seconds of this process; 0 = no limit", min=0)


@options
class GenerateOptions:
    """Generate images with a trained generator (dcgan.torch's generate.lua): a .pt from train.py or
    convert.py, or an original .t7. Writes <name>.png, 6 per row, no padding, as image.toDisplayTensor."""
    net: str = flag("", "path to the generator: <name>_<epoch>_net_G.pt, or an original .t7")
    batchSize: int = flag(32, "number of samples to produce", min=1)
    noisetype: str = flag("normal", "type of noise distribution (uniform / normal)", choices=["normal", "uniform"])
    imsize: int = flag(1, "noise is batchSize x nz x imsize x imsize: 1 = 64px, 2 = 80px, 3 = 96px ... "
                          "(16(imsize+3) for a 64-pixel net)", min=1)
    noisemode: str = flag("random", "random / line (interpolate across the batch) / linefull1d / linefull "
                                    "(the last two need batchSize=1 and imsize > 1)",
                          choices=["random", "line", "linefull1d", "linefull"])
    name: str = flag("generation1", "name of the file saved (<name>.png)")
    gpu: int = flag(1, "GPU to use, 1-based; 0 = CPU", min=0)
    display: int = flag(1, "accepted for compatibility; there is no display server")
    nz: int = flag(100, "noise dimensions (taken from the net; a different value is an error)", min=1)
    batchnorm: str = flag("eval", "eval: BatchNorm running statistics; train: each batch's own statistics, "
                                  "as generate.lua (which never calls net:evaluate())", choices=["eval", "train"])
    noise_file: str = flag("", "render this noise (.t7, .npy or .pt tensor, B x nz x h x w) instead of drawing it")
    seed: int = flag(0, "random seed for the noise; 0 = a fresh random seed")


@options
class ArithmeticOptions:
    """Vector arithmetic on faces (dcgan.torch's arithmetic.lua, without Qt): first run writes a numbered
    batch; run again with A=, B=, C= (three numbers each) to render mean(A) - mean(B) + mean(C)."""
    net: str = flag("", "path to the generator (.pt or .t7)")
    batchSize: int = flag(64, "number of samples to choose from", min=1)
    noisetype: str = flag("normal", "type of noise distribution (uniform / normal)", choices=["normal", "uniform"])
    imsize: int = flag(1, "noise spatial size, as generate.py", min=1)
    gpu: int = flag(1, "GPU to use, 1-based; 0 = CPU", min=0)
    nz: int = flag(100, "noise dimensions (taken from the net)", min=1)
    seed: int = flag(1, "random seed (arithmetic.lua uses 1)")
    A: str = flag("", "three comma-separated sample numbers (1-based, as shown in <name>_batch.png) for A")
    B: str = flag("", "three sample numbers for B")
    C: str = flag("", "three sample numbers for C")
    name: str = flag("arithmetic", "output name: <name>_batch.png (to choose from) and <name>.png (A - B + C)")


@options
class FidOptions:
    """FID and KID between two image folders, or a generator (.pt/.t7) and a folder."""
    path1: str = flag("", "image folder, or a generator (.pt / .t7) to sample from", positional=True)
    path2: str = flag("", "image folder (the reference set)", positional=True)
    feature: str = flag("auto", "feature network: inception (torchvision Inception-v3, needs its weights "
                                "file), mnist (a small digit classifier trained once on ../shared/data/"
                                "mnist_t10k), random (untrained CNN: tests only), auto = inception if its "
                                "weights are present, else mnist", choices=["auto", "inception", "mnist", "random"])
    inception_weights: str = flag("", "torchvision inception_v3_google-*.pth; default: the torch hub cache")
    feature_net: str = flag("", "where the mnist feature net is kept (trained there on first use); "
                                "default ~/.cache/torch-classics/dcgan/mnist_features.pt")
    mnist_root: str = flag("", "MNIST IDX folder to train the mnist feature net on; default ../shared/data/mnist_t10k")
    nsamples: int = flag(2000, "images drawn from a generator", min=1)
    batchSize: int = flag(100, "batch size for features and sampling", min=1)
    kid_subsets: int = flag(100, "KID: number of random subsets", min=1)
    kid_subset_size: int = flag(1000, "KID: subset size (capped at the smaller set)", min=2)
    batchnorm: str = flag("eval", "BatchNorm mode when sampling a generator", choices=["eval", "train"])
    noisetype: str = flag("normal", "noise when sampling a generator", choices=["normal", "uniform"])
    gpu: int = flag(0, "GPU to use, 1-based; 0 = CPU", min=0)
    seed: int = flag(1, "random seed (sampling, KID subsets)")


@options
class ConvertOptions:
    """Convert an original dcgan.torch generator (.t7: published 2015 or today's main.lua layout, nn or
    cudnn, CPU or CUDA) into a .pt that generate.py and fid.py read."""
    input: str = flag("", "the .t7 generator", positional=True)
    output: str = flag("", "the .pt to write (default: the input with .pt)", positional=True)


ALL = (TrainOptions, GenerateOptions, ArithmeticOptions, FidOptions, ConvertOptions)


def _names(cls):
    return [f.name for f in dataclasses.fields(cls)]


def env_argv(cls, environ=None):
    """Flags for the options of `cls` set in the environment; a stray option-like variable is a UserError."""
    environ = os.environ if environ is None else environ
    mine = set(_names(cls))
    others = {n for c in ALL for n in _names(c)} - mine
    argv = []
    for key in sorted(environ):
        if key in mine:
            field = next(f for f in dataclasses.fields(cls) if f.name == key)
            if field.metadata.get("nargs") == "?":
                continue  # positional arguments come from the command line only
            argv += [f"-{key}", environ[key]]
        elif key in others or key in ORDINARY or key.endswith("_proxy") or not _OPTION_LIKE.match(key):
            continue
        else:
            close = difflib.get_close_matches(key, sorted(mine), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"unknown option {key}={environ[key]!r} in the environment{hint}; "
                            f"options are: {' '.join(sorted(mine))}")
    return argv


def parse_env(cls, argv=None, environ=None):
    """Parse options from environment variables (as the Lua scripts) and then the command line."""
    import sys
    argv = sys.argv[1:] if argv is None else list(argv)
    return parse(cls, env_argv(cls, environ) + argv, spelling="{0}= (or -{0})")  # either may have set it


def cli(main, cls, argv=None, environ=None):
    """Parse (environment, then flags) and run `main`: a UserError anywhere is one line and exit status 1."""
    return run(lambda: main(parse_env(cls, argv, environ)))
