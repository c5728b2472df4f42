"""-cnn small and its pre-training on the shapes world (python -m neuraltalk.shapes_cnn)."""
import pytest
import torch

from common.cli import UserError, parse
from common.testing.shapes import write_dataset
from neuraltalk import shapes_cnn
from neuraltalk.cnn import CellPositions, build_cnn, fingerprint, small_cnn


def test_cell_positions_turn_places_in_a_cell_into_places_in_the_image():
    x = torch.zeros(1, 18, 8, 8)
    x[:, 16:] = 0.25
    out = CellPositions()(x)
    assert out.shape == x.shape and torch.equal(out[:, :16], x[:, :16])
    assert out[0, 16, 3, 5] == pytest.approx((5 + 0.25) / 8) and out[0, 17, 3, 5] == pytest.approx((3 + 0.25) / 8)


def test_the_small_cnn_on_64_pixels_gives_its_8x8_grid_as_fc_and_att():
    cnn = small_cnn()
    fc, att = cnn(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    assert fc.shape == (2, 8 * 8 * 18) and att.shape == (2, 64, 18)
    assert torch.equal(fc.view(2, 18, 8, 8).flatten(2).transpose(1, 2), att)  # the same grid, two layouts


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_dataset(out, 100, seed=4, size=128, val_frac=0.2, test_frac=0.0, max_shapes=2)
    return out


def test_targets_put_each_shape_in_the_cell_of_its_centre(world):
    import json
    images, classes, places = shapes_cnn.read_world(str(world), "val")
    assert images.shape == (20, 3, 64, 64) and images.dtype == torch.uint8
    regions = {r["id"]: r["regions"] for r in json.load(open(world / "region_descriptions.json"))}
    ids = json.load(open(world / "densecap_splits.json"))["val"]
    for n, image_id in enumerate(ids):
        for r in regions[image_id]:
            cx, cy = (r["x"] + r["width"] / 2) / 128, (r["y"] + r["height"] / 2) / 128
            row, col = int(cy * 8), int(cx * 8)
            assert shapes_cnn.CLASSES[int(classes[n, row, col])] == " ".join(r["phrase"].split()[-2:])
            assert places[n, :, row, col].tolist() == pytest.approx([cx, cy])
        assert int((classes[n] < len(shapes_cnn.CLASSES)).sum()) == len(regions[image_id])


def test_pre_training_learns_which_shape_is_where_and_prepro_loads_it(world, tmp_path):
    images, classes, _ = shapes_cnn.read_world(str(world), "val")
    torch.manual_seed(0)
    before, _ = shapes_cnn.shape_cell_accuracy(small_cnn(), images, classes)
    out = tmp_path / "small.pth"
    after = shapes_cnn.main(parse(shapes_cnn.ShapesCNNOptions, [
        "-shapes_dir", str(world), "-output", str(out), "-max_iters", "150", "-batch_size", "16"]))
    # 15 classes (+ nothing): a random CNN names almost no shape cell right; 150 iterations on 80 images learn
    assert before < 0.15 and after > 0.3, (before, after)
    loaded = build_cnn("small", str(out), 8)  # what prepro.py -cnn small -cnn_weights small.pth builds
    assert fingerprint(loaded) == fingerprint(_trained(out)) != fingerprint(build_cnn("small", "", 8))
    with pytest.raises(UserError, match="not small-CNN weights"):
        torch.save({"w": torch.zeros(1)}, tmp_path / "bad.pth")
        build_cnn("small", str(tmp_path / "bad.pth"))


def _trained(path):
    cnn = small_cnn()
    cnn.load_state_dict(torch.load(path, weights_only=True))
    return cnn
