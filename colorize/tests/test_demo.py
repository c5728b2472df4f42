"""demo.py: the two baselines and the scores it prints, and demo.sh's recipe giving the same bytes twice."""
import hashlib
import re

import numpy as np
from PIL import Image
from skimage.color import rgb2lab

from colorize import colorize, demo, metrics, train
from colorize.tests.conftest import REPO
from common.cli import parse


def test_mean_ab_weighs_every_pixel_and_the_baselines_keep_the_gray_lightness():
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((10, 30, 3), np.uint8)
    blue[..., 2] = 200
    want = (rgb2lab(red)[0, 0, 1:] * 100 + rgb2lab(blue)[0, 0, 1:] * 300) / 400  # 100 red pixels, 300 blue
    np.testing.assert_allclose(demo.mean_ab([red, blue]), want, rtol=1e-9)

    gray = np.linspace(20, 230, 64 * 48).reshape(48, 64).astype(np.uint8)
    assert np.abs(demo.with_ab(gray, (0, 0)).astype(int) - gray[..., None]).max() <= 1  # ab = 0: the gray itself
    tinted = demo.with_ab(gray, (10, 20))
    lab = rgb2lab(tinted)
    np.testing.assert_allclose(lab[..., 1:].reshape(-1, 2).mean(0), (10, 20), atol=1.0)
    np.testing.assert_allclose(lab[..., 0], rgb2lab(np.repeat(gray[..., None], 3, 2))[..., 0], atol=1.0)


def test_compare_scores_ours_against_both_baselines(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "colorize"
    for sub in ("data/train", "data/heldout", "data/heldout_gray", "colorized"):
        (root / sub).mkdir(parents=True)
    train = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(train).save(root / "data/train/t.png")
    original = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    gray = demo.to_gray(original)
    Image.fromarray(original).save(root / "data/heldout/h.png")
    Image.fromarray(gray).save(root / "data/heldout_gray/h.png")
    ours = np.clip(original.astype(int) + rng.integers(-3, 4, original.shape), 0, 255).astype(np.uint8)
    Image.fromarray(ours).save(root / "colorized/h.png")

    m = demo.compare(root)
    baseline = demo.with_ab(gray, demo.mean_ab([train]))
    np.testing.assert_allclose(m, [metrics.psnr(ours, original), metrics.psnr(np.dstack([gray] * 3), original),
                                   metrics.psnr(baseline, original), metrics.colourfulness(ours),
                                   metrics.colourfulness(original)], rtol=1e-9)
    assert m[0] > 35 > max(m[1], m[2])  # a near-copy of the original beats both baselines by far
    line = (root / "scores.txt").read_text().splitlines()[-1]
    assert re.match(r"colorize demo: PSNR ours [\d.]+ dB, gray [\d.]+ dB, mean-ab [\d.]+ dB; colourfulness ours "
                    r"[\d.]+, original [\d.]+", line), line
    sheet = Image.open(root / "side_by_side.jpg")
    assert sheet.size == (4 * 32 + 30, 24 + 24)  # gray | mean-ab | ours | original, labelled


def test_demo_recipe_stops_on_iterations_and_gives_the_same_bytes_twice(tmp_path):
    """demo.sh's train.py + colorize.py steps (its flags, fewer iterations, a smaller network) run twice."""
    recipe = demo_sh_train_flags()
    assert "-max_iters" in recipe and "-max_cpu_time" not in recipe
    assert "-precision fp32" in (REPO / "colorize" / "demo.sh").read_text()  # not bf16 on some CPUs only
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray((rng.random((72, 80, 3)) * 255).astype(np.uint8)).save(photos / f"p{i}.png")
    Image.fromarray(demo.to_gray((rng.random((40, 56, 3)) * 255).astype(np.uint8))).save(tmp_path / "gray.png")
    small = dict(zip(recipe[::2], recipe[1::2])) | {"-max_iters": "3", "-width": "16", "-image_size": "32",
                                                      "-eval_every": "3"}
    digests = []
    for run in ("a", "b"):  # in one process: train.main seeds everything itself, as a fresh process would be
        flags = [str(x) for kv in small.items() for x in kv]
        model = train.main(parse(train.TrainOptions, ["-data_dir", str(photos), "-checkpoint_dir",
                                                      str(tmp_path / run), *flags]))
        out = tmp_path / f"{run}.png"
        colorize.main(parse(colorize.ColorizeOptions, [str(tmp_path / "gray.png"), str(out), "-model", model,
                                                        "-precision", "fp32"]))
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def demo_sh_train_flags():
    """The flags demo.sh gives train.py (all but the folders)."""
    text = (REPO / "colorize" / "demo.sh").read_text().replace("\\\n", " ")
    line = next(s for s in text.splitlines() if "train.py" in s)
    words = line.split()
    words = words[words.index('"$HERE/train.py"') + 1:]
    words = words[:next((i for i, w in enumerate(words) if w in ("|", ">", "2>&1")), len(words))]
    flags = []
    for k, v in zip(words[::2], words[1::2]):
        if k in ("-data_dir", "-val_dir", "-checkpoint_dir") or not k.startswith("-"):
            continue
        flags += [k, v.strip('"')]
    return flags
