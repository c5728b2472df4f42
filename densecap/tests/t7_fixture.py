"""A small densecap .t7 with the original's object layout (DenseCapModel.lua / LocalizationLayer.lua /
LanguageModel.lua), written with common.t7 for the importer tests: tiny trunk, k anchors, V words."""
import numpy as np

from common import t7

ANCHORS_WH = np.array([[22, 45], [45, 22], [32, 32], [64, 64]], dtype=np.float64)  # k = 4


def T(name, **fields):
    return t7.TorchObject(name.encode(), fields)


def seq(*mods):
    return T("nn.Sequential", modules=list(mods))


def make_t7_model(seed=0, C=16, R=8, F=24, E=12, H=10, words=("a", "red", "circle", "square", "small")):
    """-> (the checkpoint table, dict of the raw arrays)."""
    rng = np.random.default_rng(seed)
    w = lambda *s: rng.normal(0, 0.2, s)  # noqa: E731
    A = {}
    trunk = []
    widths = [3, C // 4, C // 2, C, C]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        A[f"conv{i}"] = (w(b, a, 3, 3), w(b))
        # alternate the layouts the Lua side used: cudnn 4-D weights and nn.SpatialConvolutionMM 2-D ones
        name, weight = ("cudnn.SpatialConvolution", A[f"conv{i}"][0]) if i % 2 == 0 else \
            ("nn.SpatialConvolutionMM", A[f"conv{i}"][0].reshape(b, -1))
        trunk += [T(name, weight=weight, bias=A[f"conv{i}"][1], nInputPlane=a, nOutputPlane=b, kH=3, kW=3,
                    dH=1, dW=1, padH=1, padW=1), T("cudnn.ReLU"), T("cudnn.SpatialMaxPooling", kH=2, kW=2)]
    k = len(ANCHORS_WH)
    A["rpn"] = (w(R, C, 3, 3), w(R))
    A["box"] = (w(4 * k, R, 1, 1) * 0.1, w(4 * k) * 0.1)
    A["score"] = (w(2 * k, R, 1, 1), w(2 * k))
    conv = lambda key, n_in, n_out, kk: T("nn.SpatialConvolution", weight=A[key][0], bias=A[key][1],  # noqa: E731
                                          nInputPlane=n_in, nOutputPlane=n_out, kH=kk, kW=kk)
    box_branch = seq(conv("box", R, 4 * k, 1), T("nn.RegularizeLayer", w=5e-5),
                     T("nn.ConcatTable", modules=[seq(T("nn.MakeAnchors", x0=8.5, y0=8.5, sx=16, sy=16,
                                                        anchors=ANCHORS_WH.T.copy()),
                                                      T("nn.ReshapeBoxFeatures", k=k)),
                                                  T("nn.ReshapeBoxFeatures", k=k)]),
                     T("nn.ConcatTable", modules=[T("nn.ApplyBoxTransform"), T("nn.Identity")]))
    rpn = seq(conv("rpn", C, R, 3), T("nn.ReLU"),
              T("nn.ConcatTable", modules=[box_branch, seq(conv("score", R, 2 * k, 1), T("nn.ReshapeBoxFeatures", k=k))]),
              T("nn.FlattenTable"))
    lin = lambda key: T("nn.Linear", weight=A[key][0], bias=A[key][1])  # noqa: E731
    A["fc6"] = (w(F, C * 49), w(F))
    A["fc7"] = (w(F, F), w(F))
    A["obj"] = (w(1, F), w(1))
    A["boxreg"] = (w(4, F) * 0.1, w(4) * 0.1)
    V = len(words)
    A["enc"] = (w(E, F), w(E))
    A["lookup"] = w(V + 2, E)
    A["lstm"] = (w(E + H, 4 * H), w(4 * H))
    A["out"] = (w(V + 1, H), w(V + 1))
    lm = T("nn.LanguageModel", vocab_size=V, seq_length=6, input_encoding_size=E, rnn_size=H,
           image_encoder=seq(lin("enc"), T("nn.ReLU"), T("nn.View")),
           lookup_table=T("nn.LookupTable", weight=A["lookup"]),
           rnn=seq(T("nn.LSTM", weight=A["lstm"][0], bias=A["lstm"][1], input_dim=E, hidden_dim=H),
                   T("nn.View"), lin("out"), T("nn.View")))
    nets = {"conv_net1": seq(), "conv_net2": seq(*trunk),
            "localization_layer": T("nn.LocalizationLayer", nets={"rpn": rpn}),
            "recog_base": seq(lin("fc6"), T("nn.ReLU"), T("nn.Dropout"), lin("fc7"), T("nn.ReLU"), T("nn.Dropout")),
            "objectness_branch": lin("obj"), "box_reg_branch": lin("boxreg"), "language_model": lm}
    opt = {"idx_to_token": {i + 1: t for i, t in enumerate(words)}, "vocab_size": V, "seq_length": 6,
           "backend": "cudnn"}
    model = T("nn.DenseCapModel", opt=opt, nets=nets)
    return {"model": model}, A
