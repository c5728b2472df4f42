import io
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from common.captions import tokenize
from common.cli import UserError, parse
from common.testing.shapes import write_dataset
from densecap import preprocess
from densecap.loader import DataLoader
from densecap.tests.conftest import coco_mini, splits_json, vg_sample


def prep(args):
    return preprocess.main(parse(preprocess.PreprocessOptions, [str(a) for a in args]))


def test_visual_genome_sample(tmp_path):
    # the real VG annotations of images 1-100; the images are blank ones of the stated sizes
    meta = json.load(open(vg_sample() / "image_data.json_samples.json"))
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for m in meta:
        Image.new("RGB", (m["width"], m["height"]), (10, 20, 30)).save(img_dir / f"{m['image_id']}.jpg")
    h5, js = tmp_path / "vg.h5", tmp_path / "vg.json"
    info = prep(["--region_data", vg_sample() / "region_descriptions.json_samples.json", "--image_dir", img_dir,
                 "--split_json", splits_json(), "--h5_output", h5, "--json_output", js, "--image_size", 96,
                 "--num_workers", 2])
    splits = json.load(open(splits_json()))
    regions = {e["id"]: e["regions"] for e in json.load(open(vg_sample() / "region_descriptions.json_samples.json"))}
    with h5py.File(h5) as f:
        split = f["split"][:]
        # images 1-100 that are in the official splits: 28 train, 3 val, 2 test
        assert [int((split == k).sum()) for k in range(3)] == [28, 3, 2]
        assert f["images"].shape == (33, 3, 96, 96) and f["images"].dtype == np.uint8
        assert f["labels"].shape[1] == 15
        vid = min(i for i in splits["train"] if i <= 100)
        m = next(m for m in meta if m["image_id"] == vid)
        i = info["filename_to_idx"][f"{vid}.jpg"]
        W, H = m["width"], m["height"]
        assert split[i] == 0 and (f["original_widths"][i], f["original_heights"][i]) == (W, H)
        s = 96 / max(W, H)
        assert (f["image_widths"][i], f["image_heights"][i]) == (round(W * s), round(H * s))
        h = round(H * s)
        img = f["images"][i]
        assert np.all(np.abs(img[:, :h, :].astype(int) - np.array([10, 20, 30]).reshape(3, 1, 1)) <= 2)
        assert np.all(img[:, h:] == 0)
        first, last = f["img_to_first_box"][i], f["img_to_last_box"][i]
        kept = [r for r in regions[vid] if 0 < len(tokenize(r["phrase"])) <= 15]
        assert last - first + 1 == len(kept)
        assert np.all(f["box_to_img"][first - 1:last] == i + 1)
        # the first region of image 1, scaled by 96/800, as (xc, yc, w, h) 1-indexed
        r = kept[0]
        x1, w = round(r["x"] * s) + 1, max(1, round(r["width"] * s))
        assert f["boxes"][first - 1][[0, 2]].tolist() == [x1 + w // 2, w]
        words = [info["idx_to_token"][str(t)] for t in f["labels"][first - 1] if t]
        toks = tokenize(r["phrase"])
        assert words == [t if t in info["token_to_idx"] else "<UNK>" for t in toks]
        assert f["lengths"][first - 1] == len(toks)
        assert np.all(f["boxes"][:, 2:] >= 1) and np.all(f["boxes"][:, :2] >= 1)
    # only words seen >= 15 times are in the vocabulary
    counts = {}
    for k in info["filename_to_idx"]:
        for r in regions[int(k.split(".")[0])]:
            t = tokenize(r["phrase"])
            if 0 < len(t) <= 15:
                for w in t:
                    counts[w] = counts.get(w, 0) + 1
    assert set(info["token_to_idx"]) == {w for w, c in counts.items() if c >= 15} | {"<UNK>"}
    loader = DataLoader(str(h5), str(js))
    (x, boxes, labels, meta_i), _ = loader.next("train")
    assert x.shape[0] == 1 and boxes.shape[1] == 4 and labels.shape == (boxes.shape[0], 15)


def test_shapes_and_coco(tmp_path):
    paths = write_dataset(tmp_path / "shapes", 10, seed=0, size=64)
    prep(["--region_data", paths["region_descriptions"], "--image_dir", paths["images"], "--split_json",
          paths["splits_json"], "--h5_output", tmp_path / "s.h5", "--json_output", tmp_path / "s.json",
          "--image_size", 64, "--min_token_instances", 1])
    with h5py.File(tmp_path / "s.h5") as f:
        vg = json.load(open(paths["region_descriptions"]))
        r = vg[0]["regions"][0]
        # 64 px images stay 64 px: the box is the shape's, 1-indexed centre
        assert f["boxes"][0].tolist() == [r["x"] + 1 + r["width"] // 2, r["y"] + 1 + r["height"] // 2,
                                          r["width"], r["height"]]
    info = prep(["--coco_instances", coco_mini() / "annotations/instances_train2017.json", "--coco_images",
                 coco_mini() / "train2017", "--h5_output", tmp_path / "c.h5", "--json_output", tmp_path / "c.json",
                 "--image_size", 64, "--min_token_instances", 2, "--max_images", 20])
    with h5py.File(tmp_path / "c.h5") as f:
        assert f["images"].shape[0] == 20 and sorted(set(f["split"][:].tolist())) == [0, 1, 2]
    assert "person" in info["token_to_idx"]
    prep(["--coco_instances", coco_mini() / "annotations/instances_train2017.json", "--coco_images",
          coco_mini() / "train2017", "--coco_captions", coco_mini() / "annotations/captions_train2017.json",
          "--h5_output", tmp_path / "cc.h5", "--json_output", tmp_path / "cc.json", "--image_size", 32,
          "--max_images", 3])
    with h5py.File(tmp_path / "cc.h5") as f:
        # each caption is a whole-image region: boxes as big as the resized image
        widths = f["image_widths"][:]
        assert (f["boxes"][:, 2] == widths[f["box_to_img"][:] - 1]).sum() >= 15


def test_bad_inputs(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(UserError, match="no images in it"):
        prep(["--region_data", tmp_path / "empty.json"])
    (tmp_path / "zero.json").write_text("")
    with pytest.raises(UserError, match="zero.json: the file is empty"):
        prep(["--region_data", tmp_path / "zero.json"])
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(UserError, match=r"bad.json: not valid JSON \(lexical error: invalid char"):
        prep(["--region_data", tmp_path / "bad.json"])
    # cut off after the first image: streaming finds out only at the end, and still says so in one line
    (tmp_path / "cut.json").write_text('[{"id": 1, "regions": []}, {"id": 2, "regi')
    with pytest.raises(UserError, match=r"cut.json: not valid JSON \(parse error: premature EOF\)$"):
        prep(["--region_data", tmp_path / "cut.json", "--split_json", ""])
    (tmp_path / "ints.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="item 0 is not an image record"):
        prep(["--region_data", tmp_path / "ints.json"])
    (tmp_path / "coco.json").write_text("{}")
    with pytest.raises(UserError, match="coco.json: no images in it"):
        prep(["--coco_instances", tmp_path / "coco.json"])
    regions = [{"id": 1, "regions": [{"region_id": 1, "image_id": 1, "x": 0, "y": 0, "width": 5, "height": 5,
                                       "phrase": "a thing"}]},
               {"id": 2, "regions": [{"region_id": 2, "image_id": 2, "x": 0, "y": 0, "width": 5, "height": 5,
                                       "phrase": "a thing"}]}]
    (tmp_path / "r.json").write_text(json.dumps(regions))
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "1.jpg").write_text("not a jpeg")
    with pytest.raises(UserError, match="no usable images"):
        prep(["--region_data", tmp_path / "r.json", "--image_dir", tmp_path / "img", "--split_json", ""])
    # one good image beside the unreadable one: kept, the other skipped with a warning naming it
    Image.new("RGB", (20, 10)).save(tmp_path / "img" / "2.jpg")
    err = io.StringIO()
    info = preprocess.main(parse(preprocess.PreprocessOptions, [
        "--region_data", str(tmp_path / "r.json"), "--image_dir", str(tmp_path / "img"), "--split_json", "",
        "--h5_output", str(tmp_path / "r.h5"), "--json_output", str(tmp_path / "r.json.out")]), err=err)
    assert list(info["filename_to_idx"]) == ["2.jpg"]
    assert "warning: skipping" in err.getvalue() and "1.jpg: not a readable image" in err.getvalue()


def _peak_rss_mb(d, args):
    """Peak RSS (MB) of preprocess.py run in a fresh process."""
    code = ("import sys; from common.cli import parse; from densecap import preprocess;"
            "preprocess.main(parse(preprocess.PreprocessOptions, sys.argv[1:]));"
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking (pytest) process
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))")
    out = subprocess.run([sys.executable, "-c", code, *map(str, args), "--h5_output", d / "o.h5",
                          "--json_output", d / "o.json", "--num_workers", "1"],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    return int(out.stdout.split()[-1]) / 1024


def _big_vg(d, n):
    """A region_descriptions.json of n images: the 100 real VG sample entries again and again under new
    ids (9 KB of JSON, ~50 regions per image), each image a link to one small blank JPEG."""
    sample = json.load(open(vg_sample() / "region_descriptions.json_samples.json"))
    (d / "images").mkdir(parents=True)
    Image.new("RGB", (80, 60), (10, 20, 30)).save(d / "blank.jpg")
    with open(d / "regions.json", "w") as f:
        f.write("[")
        for i in range(n):
            entry = sample[i % len(sample)]
            regions = [dict(r, image_id=i + 1) for r in entry["regions"]]
            f.write(("," if i else "") + json.dumps({"regions": regions, "id": i + 1}))
            (d / "images" / f"{i + 1}.jpg").symlink_to(d / "blank.jpg")
        f.write("]")
    return ["--region_data", d / "regions.json", "--image_dir", d / "images", "--split_json", ""]


def test_memory_does_not_grow_with_the_region_file(tmp_path):
    # 100 vs 1,000 images (0.9 vs 9 MB of region JSON, 5k vs 50k regions): streamed, peaks 56 vs 58 MB here.
    # Read whole (json.load, as before), the same runs peaked at 55 vs 115 MB.
    small = _peak_rss_mb(tmp_path / "small", _big_vg(tmp_path / "small", 100) + ["--image_size", "16"])
    big = _peak_rss_mb(tmp_path / "big", _big_vg(tmp_path / "big", 1000) + ["--image_size", "16"])
    with h5py.File(tmp_path / "big" / "o.h5") as f:
        assert f["images"].shape[0] == 1000 and f["boxes"].shape[0] > 40_000
    # relative to the data, not an absolute figure: the 900 extra images' JSON may not stay in memory (parsed
    # whole, it cost ~7x its bytes); what a machine or build adds to both runs cancels out
    extra_json_mb = ((tmp_path / "big" / "regions.json").stat().st_size
                     - (tmp_path / "small" / "regions.json").stat().st_size) / 2**20
    assert big - small < 0.5 * extra_json_mb, (small, big, extra_json_mb)


def test_memory_does_not_grow_with_images(tmp_path):
    # 400 x 400 x 3 = 0.5 MB per stored image: holding 200 of them would add ~90 MB
    def run(n):
        paths = write_dataset(tmp_path / f"n{n}", n, seed=0, size=32)
        return _peak_rss_mb(tmp_path / f"n{n}", ["--region_data", paths["region_descriptions"], "--image_dir",
                                                 paths["images"], "--split_json", paths["splits_json"],
                                                 "--image_size", "400"])
    small, big = run(20), run(200)
    # relative to the data: the 180 extra images, if held, would add their 400 x 400 x 3 bytes each
    assert big - small < 0.3 * 180 * 400 * 400 * 3 / 2**20, (small, big)


def _prep_cli(args):
    return subprocess.run([sys.executable, "densecap/preprocess.py"] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).parents[2])


def test_cli_skips_a_truncated_png_and_refuses_size_0(tmp_path):
    paths = write_dataset(tmp_path / "shapes", 6, seed=0, size=64)
    victim = sorted(Path(paths["images"]).iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:200])  # header intact, pixels cut
    args = ["--region_data", paths["region_descriptions"], "--image_dir", paths["images"], "--split_json",
            paths["splits_json"], "--h5_output", tmp_path / "s.h5", "--json_output", tmp_path / "s.json",
            "--min_token_instances", 1]
    out = _prep_cli(args + ["--image_size", 64])
    assert out.returncode == 0, out.stderr[-2000:]
    assert victim.name in out.stderr and "1 image(s) skipped" in out.stderr
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["images"].shape[0] == 5
    zero = _prep_cli(args + ["--image_size", 0, "--h5_output", tmp_path / "z.h5"])
    assert zero.returncode == 2 and len(zero.stderr.strip().splitlines()) == 1 and "image_size" in zero.stderr
    assert not (tmp_path / "z.h5").exists()
