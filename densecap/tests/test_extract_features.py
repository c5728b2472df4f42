"""extract_features.py: region codes equal the model's own region path, boxes in the original image's
pixels, rows streamed to disk one image at a time, bad images skipped and counted, an interrupted run resumed."""
import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from common.cli import UserError, parse
from densecap import box_utils, extract_features
from densecap.checkpoints import load_model
from densecap.loader import load_image
from densecap.localization import roi_features_grid


def opts(txt, out, ck, *extra):
    return parse(extract_features.ExtractOptions,
                 ["-input_txt", str(txt), "-output_h5", str(out), "-checkpoint", str(ck), "-gpu", "-1",
                  "-image_size", "160", "-num_proposals", "40", "-boxes_per_image", "8", "-precision", "fp32",
                  *map(str, extra)])


@pytest.fixture
def images(shapes_dir, tmp_path):
    """Three scenes at three sizes (so the scale back to the original differs) and a list file with a bad line."""
    paths = []
    for k, (f, size) in enumerate(zip(sorted(shapes_dir.iterdir()), [(128, 128), (200, 100), (90, 150)])):
        p = tmp_path / f"img{k}.png"
        Image.open(f).resize(size).save(p)
        paths.append(p)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    txt = tmp_path / "list.txt"
    txt.write_text(f"{paths[0]}\n{tmp_path / 'bad.jpg'}\n{paths[1]}\n{tmp_path / 'missing.png'}\n{paths[2]}\n")
    return txt, paths


def test_codes_are_the_models_region_path_and_boxes_are_in_original_pixels(tiny_checkpoint, images, tmp_path,
                                                                           capsys):
    txt, paths = images
    out = tmp_path / "feats.h5"
    extract_features.main(opts(txt, out, tiny_checkpoint))
    err = capsys.readouterr().err
    assert "bad.jpg" in err and "missing.png" in err and "skipped 2 unreadable" in err
    assert not (tmp_path / "feats.h5.partial").exists()
    model, _, _ = load_model(tiny_checkpoint)
    with h5py.File(out) as f:
        assert f["feats"].shape == (5, 8, 64) and f["boxes"].shape == (5, 8, 4)
        assert f["valid"][:].tolist() == [1, 0, 1, 0, 1]
        assert not f["feats"][1].any() and not f["feats"][3].any()
        for row, p in zip((0, 2, 4), paths):
            img, x = load_image(p, 160)
            w0, h0 = Image.open(p).size
            k = int(f["num_boxes"][row])
            assert 0 < k <= 8 and not f["feats"][row, k:].any()
            # the model's own test path gives the same final boxes (scaled back to the original image) ...
            boxes, scores, _ = model.forward_test(x, 0.7, 0.4, 40, captions=False)
            want = box_utils.xcycwh_to_xywh(boxes[:k]) * torch.tensor([w0 / img.size[0], h0 / img.size[1]] * 2)
            np.testing.assert_allclose(f["boxes"][row, :k], want.numpy(), rtol=1e-5, atol=1e-3)
            assert (f["boxes"][row, :k, 0] + f["boxes"][row, :k, 2] <= w0 + 0.01).all()
            # ... and the codes are fc7 of those boxes' proposals, pooled by grid_sample (an independent RoI
            # pooling) and run through recog_base
            _, _, codes, proposals = extract_features.region_codes(model, x, 0.7, 0.4, 40)
            with torch.no_grad():
                pooled = roi_features_grid(model.extract_features(x), proposals[:k], *x.shape[-2:])
                ref = model.recog_base(pooled.flatten(1))
            np.testing.assert_allclose(f["feats"][row, :k], ref.numpy(), rtol=1e-4, atol=1e-4)
            assert np.abs(ref.numpy()).max() > 0
    with pytest.raises(UserError, match="already exists"):
        extract_features.main(opts(txt, out, tiny_checkpoint))


def test_rows_are_on_disk_as_they_are_done_and_an_interrupted_run_resumes(tiny_checkpoint, images, tmp_path,
                                                                          monkeypatch, capsys):
    txt, paths = images
    out = tmp_path / "feats.h5"
    real, calls = extract_features.extract_one, []

    def dies_on_the_third_good_image(model, path, *a):
        calls.append(str(path))
        if str(path) == str(paths[2]):
            raise KeyboardInterrupt
        return real(model, path, *a)

    monkeypatch.setattr(extract_features, "extract_one", dies_on_the_third_good_image)
    with pytest.raises(KeyboardInterrupt):
        extract_features.main(opts(txt, out, tiny_checkpoint))
    partial = tmp_path / "feats.h5.partial"
    assert not out.exists() and partial.exists()
    with h5py.File(partial) as f:  # images 0..3 are written (one at a time: the run never held them all)
        assert f["done"][:].tolist() == [1, 1, 1, 1, 0] and f["valid"][:].tolist() == [1, 0, 1, 0, 0]
        first_rows = f["feats"][0].copy()
    monkeypatch.setattr(extract_features, "extract_one", real)
    seen = []
    monkeypatch.setattr(extract_features, "extract_one", lambda m, p, *a: (seen.append(str(p)), real(m, p, *a))[1])
    extract_features.main(opts(txt, out, tiny_checkpoint))
    assert seen == [str(paths[2])] and "resuming" in capsys.readouterr().err
    with h5py.File(out) as f:
        assert f["valid"][:].tolist() == [1, 0, 1, 0, 1]
        np.testing.assert_array_equal(f["feats"][0], first_rows)
    # a partial from other settings is not mixed in: it starts again
    out2 = tmp_path / "other.h5"
    partial.write_bytes(b"")
    (tmp_path / "other.h5.partial").write_bytes(b"not hdf5")
    extract_features.main(opts(txt, out2, tiny_checkpoint))
    assert "starting it again" in capsys.readouterr().err and out2.exists()


def test_bf16_codes_are_the_fp32_codes_to_bf16_rounding(tiny_checkpoint, images, tmp_path, capsys):
    """-precision bf16 (auto on an AVX512-BF16/AMX CPU; emulated, slowly, elsewhere): this random model's
    near-tied scores may reorder its boxes, but the boxes are fp32's and each one's code is fp32's code of the
    same box to within bf16's rounding; a resumed run never mixes the two precisions."""
    txt, paths = images
    rows = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.h5"
        extract_features.main(opts(txt, out, tiny_checkpoint, "-precision", precision))
        assert f"({precision})" in capsys.readouterr().err
        with h5py.File(out) as f:
            rows[precision] = [(f["boxes"][i, :f["num_boxes"][i]], f["feats"][i, :f["num_boxes"][i]]) for i in (0, 2, 4)]
    matched = total = 0
    for (b32, c32), (b16, c16) in zip(rows["fp32"], rows["bf16"]):
        total += len(b16)
        for box, code in zip(b16, c16):
            d = np.abs(b32 - box).max(1)
            if d.min() < 1.0:   # the same box (original-image pixels)
                matched += 1
                ref = c32[d.argmin()]
                assert 0 < np.abs(code - ref).max() < 0.05 * np.abs(ref).max()   # bf16 ran, and rounds only
    assert total > 0 and matched >= 0.75 * total
    sig = [extract_features.signature(["a.png"], opts(txt, "o.h5", tiny_checkpoint, "-precision", p), 64)
           for p in ("fp32", "bf16")]
    assert sig[0] != sig[1]


def test_bad_arguments_are_one_line(tiny_checkpoint, tmp_path):
    with pytest.raises(UserError, match="-input_txt"):
        extract_features.main(opts(tmp_path / "none.txt", tmp_path / "o.h5", tiny_checkpoint))
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(UserError, match="no image paths"):
        extract_features.main(opts(tmp_path / "empty.txt", tmp_path / "o.h5", tiny_checkpoint))
    with pytest.raises(UserError, match="does not exist"):
        (tmp_path / "one.txt").write_text("x.png\n")
        extract_features.main(opts(tmp_path / "one.txt", tmp_path / "no/o.h5", tiny_checkpoint))
    with pytest.raises(SystemExit):
        opts(tmp_path / "empty.txt", tmp_path / "o.h5", tiny_checkpoint, "-boxes_per_image", 0)


def test_boxes_of_an_exif_rotated_photo_are_in_the_upright_pictures_pixels(tiny_checkpoint, shapes_dir, tmp_path):
    """A 200x100 JPEG tagged "rotate 90" (EXIF orientation 6) is a 100x200 picture: its rows equal those of the
    same picture stored upright."""
    im = Image.open(sorted(shapes_dir.iterdir())[0]).resize((200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(tmp_path / "tagged.jpg", quality=95, exif=exif)
    from common.images import open_rgb
    open_rgb(tmp_path / "tagged.jpg").save(tmp_path / "upright.png")   # the picture a viewer shows
    assert Image.open(tmp_path / "upright.png").size == (100, 200)
    rows = {}
    for name in ("tagged.jpg", "upright.png"):
        txt, out = tmp_path / f"{name}.txt", tmp_path / f"{name}.h5"
        txt.write_text(f"{tmp_path / name}\n")
        extract_features.main(opts(txt, out, tiny_checkpoint))
        with h5py.File(out) as f:
            rows[name] = f["boxes"][0, :int(f["num_boxes"][0])]
    assert len(rows["upright.png"]) > 0
    np.testing.assert_allclose(rows["tagged.jpg"], rows["upright.png"], atol=1e-3)
    assert rows["upright.png"][:, 1].max() > 100   # boxes below the tagged file's stored height: upright pixels
