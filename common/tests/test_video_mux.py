"""common.video.Writer(audio_from=): every output container gets all the video frames and the audio.

(Matroska demuxes video packets with a pts and no dts; the muxer once dropped them all as flush packets.)"""
import numpy as np
import pytest

from common import video


@pytest.mark.parametrize("src_ext", ["mp4", "mkv"])
@pytest.mark.parametrize("out_ext", ["mp4", "mkv", "webm"])
def test_frames_and_audio_survive_the_mux(tmp_path, src_ext, out_ext):
    src = video.make_clip(tmp_path / f"in.{src_ext}", lambda k: np.full((32, 48, 3), 40 * k, np.uint8), 5,
                          audio=True)
    out = tmp_path / f"out.{out_ext}"
    with video.Writer(out, 10, audio_from=src) as w:
        for rgb in video.frames(src, max_frames=3):
            w.write(rgb)
    got = list(video.frames(out))
    assert len(got) == 3 and video.probe(out).has_audio
    np.testing.assert_allclose([f.mean() for f in got], [0, 40, 80], atol=4)
