"""common.download (every download_model.sh) and `make download-data`, against a server on 127.0.0.1."""
import hashlib
import json
import shutil
import socket

import pytest

from common import datasets, download, download_data
from common.browser import serve_folder
from common.cli import UserError


def sha(b):
    return hashlib.sha256(b).hexdigest()


def test_fetch_checks_the_checksum_and_never_leaves_a_partial_file(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "model.t7").write_bytes(b"weights" * 1000)
    with serve_folder(served) as url:
        dest = tmp_path / "out" / "model.t7"
        download.fetch(f"{url}/model.t7", dest, sha256=sha(b"weights" * 1000), quiet=True)
        assert dest.read_bytes() == b"weights" * 1000
        mtime = dest.stat().st_mtime_ns
        download.fetch(f"{url}/model.t7", dest, sha256=sha(b"weights" * 1000), quiet=True)  # kept, not re-fetched
        assert dest.stat().st_mtime_ns == mtime
        with pytest.raises(UserError, match="sha256 .* does not match the expected"):
            download.fetch(f"{url}/model.t7", tmp_path / "bad.t7", sha256="0" * 64, quiet=True)
        with pytest.raises(UserError, match="could not download"):
            download.fetch(f"{url}/missing.t7", tmp_path / "missing.t7", quiet=True)
    assert not (tmp_path / "bad.t7").exists() and not (tmp_path / "missing.t7").exists()
    assert not [p for p in tmp_path.rglob(".part-*")]


def test_offline_is_one_line_naming_the_url_and_the_way_out(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(UserError) as e:
        download.fetch(f"http://127.0.0.1:{port}/x.t7", tmp_path / "x.t7", quiet=True)
    assert "offline?" in str(e.value) and "\n" not in str(e.value) and "x.t7" in str(e.value)


def test_the_manifest_lists_every_set_with_checksums():
    sets = download_data.read_manifest()
    assert set(sets) >= {"tinyshakespeare", "wangfeng", "dgk_lost_conv", "flickr8k_1k", "bsds500", "mnist_t10k",
                         "anime_faces_2k", "coco_mini_train", "visual_genome_sample", "densecap_demo"}
    for name, files in sets.items():
        for rel, src, digest, _ in files:
            assert src == "generated" or src.startswith(download_data.GITHUB + "/"), (name, rel)
            assert digest or rel.startswith("_source/"), (name, rel)
    assert len(sets["anime_faces_2k"]) == 2000 and len(sets["bsds500"]) == 300


def test_make_download_data_fetches_real_sets_from_a_mirror(tmp_path, monkeypatch):
    """Serve the project's copies under their raw-GitHub paths; the download must check out byte for byte."""
    root = datasets.require("wangfeng").parent
    datasets.require("densecap_demo")
    mirror = tmp_path / "mirror"
    manifest = download_data.read_manifest()
    for name in ("wangfeng", "densecap_demo"):
        for rel, src, _, _ in manifest[name]:
            target = mirror / src[len(download_data.GITHUB) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / name / rel, target)
    with serve_folder(mirror) as url:
        monkeypatch.setenv("TORCH_CLASSICS_DATA_MIRROR", url)
        download_data.main(["wangfeng", "densecap_demo", "-dest", str(tmp_path / "data")])
    for name in ("wangfeng", "densecap_demo"):
        for rel, _, digest, size in manifest[name]:
            got = (tmp_path / "data" / name / rel).read_bytes()
            assert len(got) == size and sha(got) == digest
    with pytest.raises(UserError, match="unknown data set 'nope'"):
        download_data.main(["nope"])


def test_the_flickr8k_json_is_rebuilt_by_the_rules(tmp_path):
    d = tmp_path / "flickr8k_1k"
    (d / "images").mkdir(parents=True)
    (d / "_source").mkdir()
    for n in ("2_b.jpg", "1_a.jpg", "3_c.jpg"):
        (d / "images" / n).write_bytes(b"")
    (d / "_source" / "captions.txt").write_text("image,caption\n1_a.jpg,A dog runs , fast .\n"
                                                 "1_a.jpg,Tri-colored cat .\n2_b.jpg,Two men\n3_c.jpg,x\n")
    (d / "_source" / "Flickr_8k.trainImages.txt").write_text("1_a.jpg\n")
    (d / "_source" / "Flickr_8k.devImages.txt").write_text("2_b.jpg\n")
    (d / "_source" / "Flickr_8k.testImages.txt").write_text("")
    j = download_data.build_flickr8k_json(d)
    a, b, c = j["images"]
    assert [a["filename"], b["filename"], c["filename"]] == ["1_a.jpg", "2_b.jpg", "3_c.jpg"]
    assert [s["tokens"] for s in a["sentences"]] == [["a", "dog", "runs", "fast"], ["tricolored", "cat"]]
    assert a["sentids"] == [0, 1] and b["sentids"] == [2] and b["sentences"][0]["imgid"] == 1
    assert (a["split"], b["split"], c["split"]) == ("train", "val", "train")  # in no list: train


def test_the_flickr8k_json_comes_out_byte_for_byte_as_the_projects_copy(tmp_path):
    """Captions and split lists laid out as upstream has them, from the project's json: same bytes back."""
    shared = datasets.require("flickr8k_1k") / "dataset_flickr8k.json"
    orig = json.loads(shared.read_text())
    d = tmp_path / "f"
    (d / "images").mkdir(parents=True)
    (d / "_source").mkdir()
    lines = ["image,caption"]
    for im in orig["images"]:
        (d / "images" / im["filename"]).write_bytes(b"")
        lines += [f"{im['filename']},{s['raw']}" for s in im["sentences"]]
    (d / "_source" / "captions.txt").write_text("\n".join(lines))
    unlisted = {"1155138244_859fd6e079.jpg", "1468103286_96a6e07029.jpg"}  # two of the 9 in no list
    for sp, name in (("train", "train"), ("dev", "val"), ("test", "test")):
        (d / "_source" / f"Flickr_8k.{sp}Images.txt").write_text("\n".join(
            im["filename"] for im in orig["images"] if im["split"] == name and im["filename"] not in unlisted))
    assert json.dumps(download_data.build_flickr8k_json(d)) == shared.read_text()
