"""What only look-alike .t7 files cover (written by common.t7's writer, tests/t7_fixture.py): CudaTensor and
DoubleTensor storages, cudnn.* classes and 2-D SpatialConvolutionMM weights, checked against numpy
transcriptions of the Lua layers. The real-Torch7 path (a file densecap's own code wrote, run_model.lua's
outputs) is test_lua_fixture.py."""
import numpy as np
import pytest
import torch

from common.cli import UserError
from common.testing import t7_writer
from densecap import lua_checkpoint as convert
from densecap.tests.t7_fixture import ANCHORS_WH, make_t7_model


@pytest.fixture(scope="module", params=["torch.CudaTensor", "torch.DoubleTensor"])
def t7_model(request, tmp_path_factory):
    obj, arrays = make_t7_model()
    path = tmp_path_factory.mktemp("t7") / "densecap-small.t7"
    t7_writer.save(path, obj, tensor_type=request.param)
    return path, arrays


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_language_model_matches_torch_rnn_equations(t7_model):
    path, A = t7_model
    model, idx_to_token, _ = convert.load_t7_model(path)
    assert idx_to_token == {"1": "a", "2": "red", "3": "circle", "4": "square", "5": "small"}
    codes = np.random.default_rng(1).normal(size=(3, 24))
    # LanguageModel.lua: image encoder (Linear + ReLU), then START (V+1), each through torch-rnn's LSTM:
    # a = [x, h] @ W + b, gates i, f, o = sigmoid, g = tanh; scores = Linear(h)
    We, be = A["enc"]
    W, b = A["lstm"]
    H = 10
    h, c = np.zeros((3, H)), np.zeros((3, H))
    steps = [np.maximum(codes @ We.T + be, 0), np.repeat(A["lookup"][5:6], 3, 0)]   # row V = START (V+1)
    for x in steps:
        a = np.concatenate([x, h], 1) @ W + b
        i, f, o, g = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
    ref = h @ A["out"][0].T + A["out"][1]
    with torch.no_grad():
        logp, _ = model.lm.start(model.lm_encoder(torch.tensor(codes, dtype=torch.float32)))
    ref_logp = ref - np.log(np.exp(ref).sum(1, keepdims=True))
    np.testing.assert_allclose(logp.numpy(), ref_logp, atol=1e-4)


def test_rpn_anchor_order_and_recognition_head(t7_model):
    path, A = t7_model
    model, _, _ = convert.load_t7_model(path)
    feats = torch.randn(1, 16, 3, 5)
    with torch.no_grad():
        boxes, anchors, trans, scores = model.localization.rpn(feats)
    Hf, Wf = 3, 5
    hid = torch.relu(torch.nn.functional.conv2d(feats, torch.tensor(A["rpn"][0], dtype=torch.float32),
                                                torch.tensor(A["rpn"][1], dtype=torch.float32), padding=1))[0].numpy()
    for a, y, x in [(0, 0, 0), (2, 1, 3), (3, 2, 4)]:
        row = a * Hf * Wf + y * Wf + x  # ReshapeBoxFeatures: anchor-major, then rows, then columns
        Ws, bs = A["score"]
        np.testing.assert_allclose(scores[row].numpy(), Ws[2 * a:2 * a + 2, :, 0, 0] @ hid[:, y, x] + bs[2 * a:2 * a + 2],
                                   atol=1e-4)
        Wb, bb = A["box"]
        np.testing.assert_allclose(trans[row].numpy(), Wb[4 * a:4 * a + 4, :, 0, 0] @ hid[:, y, x] + bb[4 * a:4 * a + 4],
                                   atol=1e-4)
        assert anchors[row].tolist() == [8.5 + 16 * x, 8.5 + 16 * y, *ANCHORS_WH[a]]
    roi = np.random.default_rng(2).normal(size=(2, 16 * 49))
    code = np.maximum(np.maximum(roi @ A["fc6"][0].T + A["fc6"][1], 0) @ A["fc7"][0].T + A["fc7"][1], 0)
    with torch.no_grad():
        ours = model.objectness(model.recog_base(torch.tensor(roi, dtype=torch.float32)))
    np.testing.assert_allclose(ours.numpy()[:, 0], code @ A["obj"][0][0] + A["obj"][1][0], atol=1e-4)
    # the trunk: the first conv (cudnn 4-D) and the second (SpatialConvolutionMM 2-D) both land as (out, in, 3, 3)
    np.testing.assert_allclose(model.conv_net2[4].weight.detach().numpy(), A["conv1"][0], atol=1e-6)


def test_not_a_densecap_t7(tmp_path):
    t7_writer.save(tmp_path / "x.t7", {"protos": {}, "opt": {}})
    with pytest.raises(UserError, match="not a densecap checkpoint"):
        convert.load_t7_model(tmp_path / "x.t7")
    (tmp_path / "y.t7").write_text("hello")
    with pytest.raises(UserError, match="not a readable Torch7"):
        convert.load_t7_model(tmp_path / "y.t7")
