"""train.py on the shapes world: learning, checkpoints, exact resume, SCST, scheduled sampling, bad input."""
import json

import h5py
import numpy as np
import pytest
import torch

from common import checkpoint
from common.cli import UserError, parse
from neuraltalk import train
from neuraltalk.rewards import CiderD
from neuraltalk.tests.conftest import TINY_MODEL


def train_args(prepped, cv, *extra):
    json_path, h5_path = prepped
    return ["-input_json", str(json_path), "-input_h5", str(h5_path), "-checkpoint_path", str(cv), *TINY_MODEL,
            "-batch_size", "16", "-learning_rate", "2e-3", "-drop_prob_lm", "0.2", "-losses_log_every", "1",
            "-val_images_use", "-1", *extra]


def run_train(prepped, cv, *extra):
    return train.main(parse(train.TrainOptions, train_args(prepped, cv, *extra)))


def test_show_tell_learns_the_shapes_and_keeps_the_best(prepped, tmp_path):
    path = run_train(prepped, tmp_path, "-max_iters", "60", "-save_checkpoint_every", "30", "-id", "st",
                     "-language_eval", "1")
    ck = checkpoint.load(path, "neuraltalk")
    hist = ck["history"]
    losses = [hist["loss_history"][k] for k in sorted(hist["loss_history"])]
    assert len(losses) == 60 and np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    # validation loss and metrics at each save; the -best.pt is the save with the highest CIDEr
    assert sorted(hist["val_loss_history"]) == sorted(hist["val_lang_stats_history"]) == [30, 60]
    cider = {it: s["CIDEr"] for it, s in hist["val_lang_stats_history"].items()}
    assert all(set(s) >= {"Bleu_4", "METEOR", "ROUGE_L"} for s in hist["val_lang_stats_history"].values())
    best = checkpoint.load(tmp_path / "model_idst-best.pt", "neuraltalk")["history"]
    assert best["iter"] == max(cider, key=lambda it: (cider[it], -it)) and hist["best_score"] == max(cider.values())
    info = json.load(open(tmp_path / "model_idst.json"))
    assert info["opt"]["caption_model"] == "show_tell" and len(info["val_predictions"]) == 8
    # the feature standardisation was fitted on the training images
    assert ck["feat_stats"]["fc_std"].min() > 0 and ck["feat_stats"]["fc_mean"].abs().sum() > 0


def test_resume_is_exact(prepped, tmp_path):
    a = run_train(prepped, tmp_path / "a", "-max_iters", "6", "-save_checkpoint_every", "3", "-val_images_use", "0",
                  "-scheduled_sampling_start", "0", "-scheduled_sampling_increase_every", "1",
                  "-scheduled_sampling_increase_prob", "0.2")
    run_train(prepped, tmp_path / "b", "-max_iters", "3", "-save_checkpoint_every", "3", "-val_images_use", "0",
              "-scheduled_sampling_start", "0", "-scheduled_sampling_increase_every", "1",
              "-scheduled_sampling_increase_prob", "0.2")
    b = run_train(prepped, tmp_path / "b", "-max_iters", "6", "-save_checkpoint_every", "3", "-val_images_use", "0",
                  "-scheduled_sampling_start", "0", "-scheduled_sampling_increase_every", "1",
                  "-scheduled_sampling_increase_prob", "0.2", "-start_from", str(tmp_path / "b"))
    ca, cb = checkpoint.load(a, "neuraltalk"), checkpoint.load(b, "neuraltalk")
    assert ca["history"]["iter"] == cb["history"]["iter"] == 6
    assert ca["history"]["loss_history"] == cb["history"]["loss_history"]
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k


def test_topdown_with_self_critical_training(prepped, tmp_path, capsys):
    run_train(prepped, tmp_path, "-caption_model", "topdown", "-max_iters", "20", "-save_checkpoint_every", "20",
              "-val_images_use", "0", "-id", "td")
    before = checkpoint.load(tmp_path / "model_idtd.pt", "neuraltalk")
    path = run_train(prepped, tmp_path, "-caption_model", "updown", "-max_iters", "23", "-save_checkpoint_every", "3",
                     "-val_images_use", "0", "-id", "td", "-start_from", str(tmp_path), "-self_critical_after", "0",
                     "-train_sample_n", "3", "-learning_rate", "5e-4")
    after = checkpoint.load(path, "neuraltalk")
    assert after["history"]["iter"] == 23
    scst_losses = [after["history"]["loss_history"][k] for k in range(21, 24)]
    assert all(np.isfinite(scst_losses))
    assert any(not torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


def test_cider_d_matches_pycocoevalcap():
    from pycocoevalcap.cider.cider import Cider

    refs = {1: ["a red circle left of a blue square", "a blue square right of a red circle"],
            2: ["a green triangle", "there is a green triangle"], 3: ["two shapes with a red square on the left"]}
    hyps = {1: "a red circle and a blue square", 2: "a green triangle", 3: "a red square"}
    want, per = Cider().compute_score({k: v for k, v in refs.items()}, {k: [v] for k, v in hyps.items()})
    ours = CiderD([[r.split() for r in refs[k]] for k in refs])
    got = [ours.score(hyps[k].split(), [r.split() for r in refs[k]]) for k in refs]
    assert np.allclose(got, per, atol=1e-9) and got[1] > got[2]


def test_bad_inputs_are_one_line(prepped, tmp_path):
    with pytest.raises(UserError, match="no such folder or file"):
        run_train(prepped, tmp_path, "-start_from", str(tmp_path / "nope"))
    run_train(prepped, tmp_path, "-max_iters", "2", "-save_checkpoint_every", "2", "-val_images_use", "0", "-id", "x")
    with pytest.raises(UserError, match="a show_tell checkpoint, but -caption_model is topdown"):
        run_train(prepped, tmp_path, "-start_from", str(tmp_path), "-id", "x", "-caption_model", "topdown")
    with pytest.raises(UserError, match="no model_idy.pt there"):
        run_train(prepped, tmp_path, "-start_from", str(tmp_path), "-id", "y")
    checkpoint.save(tmp_path / "other.pt", "charrnn", {"model": {}})
    with pytest.raises(UserError, match="charrnn checkpoint, expected a neuraltalk one"):
        run_train(prepped, tmp_path, "-start_from", str(tmp_path / "other.pt"))
    with pytest.raises(UserError, match="fine-tuning|needs the images"):
        json_path, h5_path = prepped
        import shutil

        import h5py
        shutil.copy(h5_path, tmp_path / "noimg.h5")
        with h5py.File(tmp_path / "noimg.h5", "a") as f:
            del f["images"]
        run_train((json_path, tmp_path / "noimg.h5"), tmp_path, "-finetune_cnn_after", "0")


def test_no_val_split_says_so(prepped, tmp_path):
    json_path, h5_path = prepped
    info = json.load(open(json_path))
    for im in info["images"]:
        im["split"] = "train"
    (tmp_path / "t.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="no images in split 'val'.*or pass -val_images_use 0"):
        run_train((tmp_path / "t.json", h5_path), tmp_path)


def test_labels_without_image_data_say_so(tmp_path, shapes):
    from neuraltalk import prepro

    root, paths = shapes
    prepro.main(parse(prepro.PreproOptions, ["-input_json", paths["karpathy_json"], "-output_json",
                                             str(tmp_path / "t.json"), "-output_h5", str(tmp_path / "t.h5"),
                                             "-image_data", "none"]))
    with pytest.raises(UserError, match="no image data"):
        run_train((tmp_path / "t.json", tmp_path / "t.h5"), tmp_path)


def test_prepro_then_train_with_no_further_flags(tmp_path, monkeypatch, capsys):
    """The README's two commands with only the names: prepro's defaults (ResNet-101, no weights: a note) write
    everything train.py's defaults read. -max_iters 1 only stops the otherwise endless run."""
    from common.testing.shapes import write_dataset
    from neuraltalk import prepro

    paths = write_dataset(tmp_path / "shapes", 5, seed=1, size=32, val_frac=0.2, test_frac=0.2)
    monkeypatch.chdir(tmp_path)
    prepro.main(parse(prepro.PreproOptions, ["-input_json", paths["karpathy_json"], "-images_root",
                                             str(tmp_path / "shapes"), "-output_json", "talk.json",
                                             "-output_h5", "talk.h5"]))
    err = capsys.readouterr().err
    assert "note: resnet101 randomly initialised" in err and "storing them as float32" in err
    with h5py.File("talk.h5", "r") as f:  # a random ResNet-101's features overflow float16
        assert f["att"].dtype == np.float32 and np.isfinite(f["att"][...]).all() and f["done"][...].all()
    path = train.main(parse(train.TrainOptions, ["-input_json", "talk.json", "-input_h5", "talk.h5", "-max_iters", "1"]))
    ck = checkpoint.load(path, "neuraltalk")
    assert ck["history"]["iter"] == 1 and list(ck["history"]["val_loss_history"]) == [1]
    assert ck["cnn_info"]["cnn"] == "resnet101" and ck["opt"]["rnn_size"] == 512


def test_max_epochs_and_max_cpu_time_stop_the_run(prepped, tmp_path, capsys):
    # 64 training images in batches of 16: half an epoch is 2 iterations
    path = run_train(prepped, tmp_path, "-max_epochs", "0.5", "-val_images_use", "0", "-id", "ep")
    assert checkpoint.load(path, "neuraltalk")["history"]["iter"] == 2
    path = run_train(prepped, tmp_path, "-max_cpu_time", "1e-9", "-val_images_use", "0", "-id", "t")
    assert checkpoint.load(path, "neuraltalk")["history"]["iter"] == 1
    assert "stopping after -max_cpu_time 1e-09 CPU s at iteration 1" in capsys.readouterr().out


def test_max_time_is_wall_clock(prepped, tmp_path, monkeypatch, capsys):
    """Each iteration sleeps 0.3 s (wall time, next to no CPU time): -max_time 1 stops the run by its 4th
    iteration, whatever the machine's speed; counted in CPU seconds it would run to -max_iters 40."""
    import time
    real = train.train_iteration

    def slow(*a, **k):
        time.sleep(0.3)
        return real(*a, **k)
    monkeypatch.setattr(train, "train_iteration", slow)
    t0 = time.time()
    path = run_train(prepped, tmp_path, "-max_time", "1", "-max_iters", "40", "-val_images_use", "0", "-id", "w")
    it = checkpoint.load(path, "neuraltalk")["history"]["iter"]
    assert 1 <= it <= 4 and time.time() - t0 >= 1
    assert f"stopping after -max_time 1s of wall clock at iteration {it}" in capsys.readouterr().out


def test_help_documents_every_flag(capsys):
    import dataclasses

    from neuraltalk import convert, prepro
    from neuraltalk import eval as nt_eval

    for cls in (prepro.PreproOptions, train.TrainOptions, nt_eval.EvalOptions, convert.ConvertOptions):
        with pytest.raises(SystemExit):
            parse(cls, ["-h"])
        out = "".join(capsys.readouterr().out.split())  # argparse wraps lines (and after hyphens)
        for f in dataclasses.fields(cls):
            helps = f.metadata["help"]
            assert f.name in out and len(helps.split()) >= 3 and "".join(helps.split()) in out, (cls, f.name)
    # the issue's list of neuraltalk2 train.lua / eval.lua options, with the originals' defaults
    names = {f.name: f.default for f in dataclasses.fields(train.TrainOptions)}
    assert {"batch_size", "seq_per_img", "learning_rate", "learning_rate_decay_start", "grad_clip", "drop_prob_lm",
            "finetune_cnn_after", "val_images_use", "save_checkpoint_every", "checkpoint_path", "language_eval",
            "start_from", "id", "seed", "gpuid", "max_iters", "caption_model", "scheduled_sampling_start",
            "self_critical_after"} <= set(names)
    ev = {f.name: f.default for f in dataclasses.fields(nt_eval.EvalOptions)}
    assert {"model", "image_folder", "num_images", "sample_max", "temperature", "batch_size", "language_eval", "split",
            "dump_images", "dump_json", "gpuid", "suppress_UNK"} <= set(ev)
    assert ev["beam_size"] == 2 and ev["num_images"] == 100 and ev["split"] == "test" and ev["suppress_UNK"] == 1


def test_finetune_changes_the_cnn(prepped, tmp_path):
    path = run_train(prepped, tmp_path, "-max_iters", "3", "-save_checkpoint_every", "3", "-val_images_use", "0",
                     "-finetune_cnn_after", "1", "-cnn_learning_rate", "1e-3", "-batch_size", "4")
    from neuraltalk.cnn import build_cnn

    fresh = build_cnn("resnet18", "", 2, 123).state_dict()
    tuned = checkpoint.load(path, "neuraltalk")["cnn"]
    assert any(not torch.equal(fresh[k], tuned[k]) for k in fresh if k.endswith("weight"))


@pytest.mark.parametrize("name", ["show_tell", "topdown"])
def test_embedding_each_image_once_equals_expanding_first(name):
    from neuraltalk.model import CaptionConfig, build_model

    torch.manual_seed(0)
    m = build_model(CaptionConfig(name, 9, 12, 8, 16, 16, 1, 0.0, 6)).eval()
    fc, att, labels = torch.randn(3, 12), torch.randn(3, 4, 8), torch.randint(0, 10, (6, 6))
    once = m(fc, att, labels, seq_per_img=2)
    first = m(fc.repeat_interleave(2, 0), att.repeat_interleave(2, 0), labels)
    assert once.shape == (6, 8, 10) and torch.allclose(once, first, atol=1e-6)


def test_topdown_teacher_forcing_equals_stepping_the_core():
    """TopDown's batched XE forward (teacher_forced) against `core` called step by step, values and gradients."""
    from neuraltalk.model import CaptionConfig, build_model

    torch.manual_seed(0)
    m = build_model(CaptionConfig("topdown", 9, 12, 8, 16, 16, 1, 0.0, 6, 10)).train()
    fc, att, labels = torch.randn(3, 12), torch.randn(3, 4, 8), torch.randint(0, 10, (6, 6))
    fast = m(fc, att, labels, seq_per_img=2)
    fast_grads = torch.autograd.grad(m.loss(fast, labels), list(m.parameters()))
    consts = tuple(c.repeat_interleave(2, 0) for c in m.prepare(fc, att))
    tokens = torch.cat([labels.new_full((6, 1), m.end_ix), (labels - 1).clamp(min=0)], 1)
    state, steps = m.zero_state(consts[0]), [torch.zeros(6, 10)]
    for t in range(tokens.size(1)):
        out, state = m.core(tokens[:, t], state, consts)
        steps.append(out)
    slow = torch.stack(steps, 1)
    slow_grads = torch.autograd.grad(m.loss(slow, labels), list(m.parameters()))
    assert fast.shape == (6, 8, 10) and torch.allclose(fast, slow, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(fast_grads, slow_grads))


def test_att_hid_size_sizes_the_attention_and_survives_the_checkpoint(prepped, tmp_path, capsys):
    from neuraltalk import eval as nt_eval
    from neuraltalk.captioner import build_captioner
    from neuraltalk.model import CaptionConfig, config_of_checkpoint

    args = ("-caption_model", "topdown", "-val_images_use", "0", "-save_checkpoint_every", "1", "-id", "a")
    path = run_train(prepped, tmp_path, *args, "-max_iters", "1", "-att_hid_size", "24")
    ck = checkpoint.load(path, "neuraltalk")
    # rnn_size 48 -> att_hid_size 24: the attention MLP's layers, not the default 512
    assert ck["model"]["ctx2att.weight"].shape == (24, 48) and ck["model"]["h2att.weight"].shape == (24, 48)
    assert ck["model"]["alpha_net.weight"].shape == (1, 24)
    assert build_captioner(ck).decoder.ctx2att.out_features == 24
    # resumed, the checkpoint's size wins (the flag's default would be 512)
    args2 = [a for a in train_args(prepped, tmp_path, *args, "-max_iters", "2", "-start_from", str(path))
             if a not in ("-att_hid_size", "32")]
    opt2 = parse(train.TrainOptions, args2)
    resumed = checkpoint.load(train.main(opt2), "neuraltalk")
    assert resumed["history"]["iter"] == 2 and resumed["model"]["ctx2att.weight"].shape == (24, 48)
    assert "the checkpoint decides -att_hid_size 24" in capsys.readouterr().out and opt2.att_hid_size == 512
    # the checkpoint stores the CaptionConfig the model was built from
    V, T = len(ck["ix_to_word"]), ck["seq_length"]
    assert resumed["config"] == CaptionConfig("topdown", V, 512, 512, 48, 48, 1, 0.2, T, 24).to_dict()

    # a checkpoint from before the Config (only `opt`, whose att_hid_size the old train.py ignored): derived
    # from the stored fields and weights, it loads and captions as the same file with its Config
    old = {k: v for k, v in resumed.items() if k != "config"}
    old["opt"] = dict(old["opt"], att_hid_size=512)
    checkpoint.save(tmp_path / "old.pt", "neuraltalk", old)
    assert config_of_checkpoint(old) == config_of_checkpoint(resumed)
    captions = []
    for name in ("model_ida.pt", "old.pt"):
        ev = ["-model", str(tmp_path / name), "-split", "val", "-num_images", "-1", "-beam_size", "2",
              "-gpuid", "-1", "-dump_images", "0", "-dump_json", "0"]
        captions.append([p["caption"] for p in nt_eval.main(parse(nt_eval.EvalOptions, ev))[0]])
    assert captions[0] == captions[1] and len(captions[0]) == 8
    args3 = [a if a != str(path) else str(tmp_path / "old.pt") for a in args2]
    args3[args3.index("-max_iters") + 1] = "3"
    again = checkpoint.load(train.main(parse(train.TrainOptions, args3)), "neuraltalk")
    assert again["history"]["iter"] == 3 and again["config"]["att_hid_size"] == 24


def test_show_tell_config_of_an_old_checkpoint_is_derived(prepped, tmp_path):
    from neuraltalk.model import config_of_checkpoint

    path = run_train(prepped, tmp_path, "-max_iters", "1", "-val_images_use", "0", "-num_layers", "2",
                     "-rnn_size", "40", "-input_encoding_size", "24")
    ck = checkpoint.load(path, "neuraltalk")
    assert ck["config"]["num_layers"] == 2 and ck["config"]["rnn_size"] == 40 and ck["config"]["fc_dim"] == 512
    old = {k: v for k, v in ck.items() if k != "config"}
    assert config_of_checkpoint(old).to_dict() == ck["config"]
