import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common import checkpoint
from common.cli import UserError, parse
from common.device import seed_everything
from common.testing.shapes import write_dataset
from densecap import evaluate_model, preprocess, train
from densecap.checkpoints import load_model
from densecap.loader import DataLoader
from densecap.model import DenseCapModel

SMALL = ["-cnn", "tiny", "-tiny_channels", "16", "-fc_dim", "32", "-rpn_num_filters", "16", "-rnn_size", "16",
         "-input_encoding_size", "16", "-anchor_scale", "0.5", "-sampler_batch_size", "32", "-learning_rate", "1e-3",
         "-finetune_cnn_after", "0", "-gpu", "-1", "-val_metric", "detmap", "-val_images_use", "3",
         "-test_num_proposals", "30", "-losses_log_every", "2", "-region_code_norm", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("shapesdata")
    paths = write_dataset(d / "shapes", 16, seed=0, size=64, val_frac=0.2, test_frac=0.1)
    preprocess.main(parse(preprocess.PreprocessOptions, [
        "--region_data", paths["region_descriptions"], "--image_dir", paths["images"], "--split_json",
        paths["splits_json"], "--h5_output", str(d / "s.h5"), "--json_output", str(d / "s.json"),
        "--image_size", "64", "--min_token_instances", "1"]))
    return ["-data_h5", str(d / "s.h5"), "-data_json", str(d / "s.json")]


def train_run(data, tmp_path, *extra):
    return train.main(parse(train.TrainOptions, SMALL + data + ["-checkpoint_path", str(tmp_path / "ck.pt")]
                            + [str(e) for e in extra]))


def test_exact_resume(data, tmp_path):
    straight = train_run(data, tmp_path / "a", "-max_iters", 6, "-save_checkpoint_every", 100)
    train_run(data, tmp_path / "b", "-max_iters", 3, "-save_checkpoint_every", 100)
    resumed = train_run(data, tmp_path / "b", "-max_iters", 6, "-save_checkpoint_every", 100,
                        "-checkpoint_start_from", tmp_path / "b" / "ck_last.pt")
    assert straight["iter"] == resumed["iter"] == 6
    a = checkpoint.load(tmp_path / "a" / "ck_last.pt", "densecap")
    b = checkpoint.load(tmp_path / "b" / "ck_last.pt", "densecap")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["history"]["losses"] == b["history"]["losses"]


def test_checkpoint_only_when_val_improves(data, tmp_path, monkeypatch):
    scores = iter([5.0, 3.0, 7.0])
    saved = []
    real_eval = train.eval_split

    def fake_eval(*a, **k):
        res = real_eval(*a, **k)
        res["detmap"] = next(scores)
        return res
    monkeypatch.setattr(train, "eval_split", fake_eval)
    real_save = train.save_model
    monkeypatch.setattr(train, "save_model", lambda path, *a, **k: (saved.append((str(path), k["iter"])),
                                                                     real_save(path, *a, **k))[1])
    out = train_run(data, tmp_path, "-max_iters", 6, "-save_checkpoint_every", 2)
    best = str(tmp_path / "ck.pt")
    # val at 2 (5.0: saved), 4 (3.0: not), 6 (7.0: saved), then the last state
    assert saved == [(best, 2), (best, 6), (str(tmp_path / "ck_last.pt"), 6)]
    assert out["best_val_score"] == 7.0
    model, _, ck = load_model(best)
    assert ck["iter"] == 6 and ck["best_val_score"] == 7.0


def test_non_finite_loss_stops_cleanly(data, tmp_path, monkeypatch, capsys):
    real = DenseCapModel.forward_train
    calls = []

    def poisoned(self, *a, **k):
        losses = real(self, *a, **k)
        calls.append(1)
        if len(calls) == 3:
            losses["captioning_loss"] = losses["captioning_loss"] * float("nan")
        return losses
    monkeypatch.setattr(DenseCapModel, "forward_train", poisoned)
    with pytest.raises(UserError, match=r"loss is NaN at iteration 3 \(.*captioning_loss nan.*\): stopping; .*"
                                        r"no step was taken for it; try a lower -learning_rate"):
        train_run(data, tmp_path, "-max_iters", 10, "-save_checkpoint_every", 100)
    assert len(calls) == 3 and not (tmp_path / "ck_last.pt").exists()


def test_time_budgets_stop_evaluate_and_save(data, tmp_path, monkeypatch, capsys):
    """-max_time counts wall seconds: iterations that sleep 0.3 s (next to no CPU time) stop a -max_time 1 run by
    its 4th, whatever the machine's speed (counted in CPU seconds it would run on to -max_iters 40); -max_cpu_time
    1e-9 stops after the first. Each validates and writes the last state."""
    import time
    real = train.compute_gradients

    def slow(*a, **k):
        time.sleep(0.3)
        return real(*a, **k)
    monkeypatch.setattr(train, "compute_gradients", slow)
    t0 = time.time()
    out = train_run(data, tmp_path / "w", "-max_time", 1, "-max_iters", 40, "-save_checkpoint_every", 100)
    assert out["stopped"] == "done" and 1 <= out["iter"] <= 4 and time.time() - t0 >= 1
    assert list(out["history"]["val"]) == [out["iter"]]
    assert checkpoint.load(tmp_path / "w" / "ck_last.pt", "densecap")["iter"] == out["iter"]
    assert f"stopping after -max_time 1s of wall clock at iteration {out['iter']}" in capsys.readouterr().out
    monkeypatch.setattr(train, "compute_gradients", real)
    out = train_run(data, tmp_path / "c", "-max_cpu_time", 1e-9, "-max_iters", 40, "-save_checkpoint_every", 100)
    assert out["stopped"] == "done" and out["iter"] == 1 and list(out["history"]["val"]) == [1]
    assert "stopping after -max_cpu_time 1e-09 CPU s at iteration 1" in capsys.readouterr().out


def test_evaluate_model_and_bad_checkpoint(data, tmp_path, capsys, monkeypatch):
    train_run(data, tmp_path, "-max_iters", 2, "-save_checkpoint_every", 2)
    res = evaluate_model.main(parse(evaluate_model.EvalOptions, [
        "-checkpoint", str(tmp_path / "ck.pt"), "-gpu", "-1", "-metric", "detmap", "-baseline", "random",
        "-num_proposals", "30", "-split", "val"]))
    assert res["num_images"] == 3 and 0 <= res["detmap"] <= 100 and 0 <= res["random_detmap"] <= 100
    assert "random boxes: detmap" in capsys.readouterr().out
    # the default -metric map (the README's command), with a stand-in for the METEOR jar: every caption
    # scores 1, so each METEOR threshold passes what the box threshold passes and mAP equals detmap
    from common import lang_eval
    calls = []
    monkeypatch.setattr(lang_eval, "meteor_score_pairs", lambda c, r: (calls.append(len(c)), [1.0] * len(c))[1])
    full = evaluate_model.main(parse(evaluate_model.EvalOptions, [
        "-checkpoint", str(tmp_path / "ck.pt"), "-gpu", "-1", "-num_proposals", "30", "-split", "val"]))
    assert calls and full["map"] == pytest.approx(full["detmap"]) and full["detmap"] == pytest.approx(res["detmap"])
    assert "mAP" in capsys.readouterr().out
    other = checkpoint.save(tmp_path / "x.pt", "neuraltalk", {})
    with pytest.raises(UserError, match="neuraltalk checkpoint, expected a densecap"):
        train_run(data, tmp_path, "-max_iters", 1, "-checkpoint_start_from", other)


def _reference_two_rank_run(argv, iters, world=2):
    """What DDP with `world` ranks must compute, in one process: each step, rank r's image (train images
    r, r + world, ...) through the model with rank r's random stream (seed + r: dropout, box sampling),
    gradients summed and divided by world, one Adam step."""
    opt = parse(train.TrainOptions, argv)
    loader = DataLoader(opt.data_h5, opt.data_json)
    models, streams = [], []
    for r in range(world):  # each rank seeds itself, then builds the model (DDP keeps rank 0's weights)
        seed_everything(opt.seed + r)
        models.append(train.build_model(opt, loader, print)[0])
        streams.append(torch.get_rng_state())
    model = models[0].train()
    optimizer = train.make_optimizer(model, opt)
    ixs = loader.split_ix["train"]
    for it in range(iters):
        optimizer.zero_grad(set_to_none=True)
        for r in range(world):
            torch.set_rng_state(streams[r])
            image, boxes, labels, _ = loader.get_image(ixs[(it * world + r) % len(ixs)])
            sum(model.forward_train(image, boxes, labels, finetune_cnn=True).values()).backward()
            streams[r] = torch.get_rng_state()
        for p in model.parameters():
            if p.grad is not None:
                p.grad /= world
        optimizer.step()
    return model


def test_torchrun_ddp_equals_one_process_seeing_the_same_images(data, tmp_path):
    """The real launcher: torchrun starts two gloo ranks of train.py, which wraps the model in
    DistributedDataParallel; rank 0's checkpoint must hold the weights a single process gets from the
    same images and random streams."""
    argv = SMALL + data + ["-max_iters", "4", "-save_checkpoint_every", "100", "-losses_log_every", "1",
                           "-checkpoint_path", str(tmp_path / "ck.pt")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "densecap.train", *argv], capture_output=True, text=True, timeout=240, env=env,
                         cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 ranks in sync after 4 iterations" in out.stdout
    assert out.stdout.count("iter 4: loss") == 1  # rank 0 alone logs (and writes checkpoints)
    assert not list(tmp_path.glob("*rank*")) and (tmp_path / "ck_last.pt").exists()
    ddp = checkpoint.load(tmp_path / "ck_last.pt", "densecap")["model"]
    ref = _reference_two_rank_run(argv, 4).state_dict()
    torch.manual_seed(0)
    start = _reference_two_rank_run(argv, 0).state_dict()
    moved = 0
    for k, v in ref.items():
        torch.testing.assert_close(ddp[k], v, atol=1e-5, rtol=0, msg=k)
        moved += not torch.allclose(v, start[k], atol=1e-4)
    print("largest |DDP - one process|:", max((ddp[k] - v).abs().max().item() for k, v in ref.items()))
    assert moved >= len(ref) - 2  # the weights did train (all but perhaps a never-used bias)


def test_coco_mini_trains_end_to_end(tmp_path):
    from densecap.tests.conftest import coco_mini

    preprocess.main(parse(preprocess.PreprocessOptions, [
        "--coco_instances", str(coco_mini() / "annotations/instances_train2017.json"), "--coco_images",
        str(coco_mini() / "train2017"), "--h5_output", str(tmp_path / "c.h5"), "--json_output", str(tmp_path / "c.json"),
        "--image_size", "96", "--min_token_instances", "2", "--max_images", "12"]))
    out = train_run(["-data_h5", str(tmp_path / "c.h5"), "-data_json", str(tmp_path / "c.json")], tmp_path,
                    "-max_iters", 3, "-save_checkpoint_every", 3)
    assert out["iter"] == 3 and out["stopped"] == "done" and 3 in out["history"]["val"]


def test_cnn_weights_flag_errors(data, tmp_path):
    with pytest.raises(UserError, match="needs -cnn vgg16"):
        train_run(data, tmp_path, "-max_iters", 1, "-cnn_weights", tmp_path / "vgg16.pth")
    with pytest.raises(UserError, match="no such file"):
        train.main(parse(train.TrainOptions, data + ["-gpu", "-1", "-max_iters", "1", "-cnn_weights",
                                                     str(tmp_path / "vgg16.pth"), "-fc_dim", "4096"]))


def test_help_lists_every_flag(capsys):
    import dataclasses

    for mod, cls in ((train, train.TrainOptions), (evaluate_model, evaluate_model.EvalOptions),
                     (preprocess, preprocess.PreprocessOptions)):
        with pytest.raises(SystemExit):
            parse(cls, ["-h"])
        text = capsys.readouterr().out
        for f in dataclasses.fields(cls):
            assert f"-{f.name}" in text, f.name


# train_opts.lua (jcjohnson/densecap at 7c32170): every flag with its default, plus the four the issue names
TRAIN_OPTS_LUA = dict(
    backend="cudnn", rpn_hidden_dim=512, sampler_batch_size=256, rnn_size=512, input_encoding_size=512,
    sampler_high_thresh=0.7, sampler_low_thresh=0.3, train_remove_outbounds_boxes=1, mid_box_reg_weight=0.05,
    mid_objectness_weight=0.1, end_box_reg_weight=0.1, end_objectness_weight=0.1, captioning_weight=1.0,
    weight_decay=1e-6, box_reg_decay=5e-5, data_h5="data/VG-regions.h5", data_json="data/VG-regions-dicts.json",
    proposal_regions_h5="", debug_max_train_images=-1, learning_rate=1e-5, optim_beta1=0.9, optim_beta2=0.999,
    optim_epsilon=1e-8, drop_prob=0.5, max_iters=-1, checkpoint_start_from="", finetune_cnn_after=-1,
    val_images_use=1000, save_checkpoint_every=10000, checkpoint_path="checkpoint.t7", test_rpn_nms_thresh=0.7,
    test_final_nms_thresh=0.3, test_num_proposals=1000, progress_dump_every=100, losses_log_every=10, id="",
    seed=123, gpu=0, timing=0, clip_final_boxes=1, eval_first_iteration=0)


def test_every_train_opts_lua_flag_with_its_default():
    opt = parse(train.TrainOptions, [])
    for name, default in TRAIN_OPTS_LUA.items():
        if name == "checkpoint_path":  # we write torch.save checkpoints, not Torch7 ones
            assert opt.checkpoint_path == "checkpoint.pt"
        else:
            assert getattr(opt, name) == default, name


def test_clip_final_boxes_reaches_validation(data, tmp_path, monkeypatch):
    seen = []
    real = DenseCapModel.forward_test
    monkeypatch.setattr(DenseCapModel, "forward_test",
                        lambda self, *a, **k: (seen.append(k["clip_final_boxes"]), real(self, *a, **k))[1])
    train_run(data, tmp_path, "-max_iters", 1, "-save_checkpoint_every", 1, "-clip_final_boxes", 0,
              "-val_images_use", 1)
    assert seen == [False]


def test_data_h5_that_is_not_hdf5_is_one_line(data, tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    (tmp_path / "not.h5").write_text("hello")
    args = ["-data_h5", str(tmp_path / "not.h5"), "-data_json", data[3], "-gpu", "-1", "-max_iters", "1",
            "-checkpoint_path", str(tmp_path / "c.pt")]
    out = subprocess.run([sys.executable, "densecap/train.py"] + args, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parents[2])
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1 and "not.h5" in out.stderr
    assert "preprocess.py" in out.stderr and not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_resumable_checkpoint_and_exits_128_plus(data, tmp_path, sig, code):
    stale = tmp_path / f"{checkpoint.TMP_PREFIX}99999999-ck.pt"
    stale.write_bytes(b"left by a kill -9")
    args = SMALL + data + ["-checkpoint_path", str(tmp_path / "ck.pt"), "-max_iters", "100000",
                           "-losses_log_every", "1", "-save_checkpoint_every", "100000"]
    proc = subprocess.Popen([sys.executable, "-u", "densecap/train.py"] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parents[2], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if line.startswith("iter 2:"):
            break
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "resume with -checkpoint_start_from" in err and (tmp_path / "ck_last.pt").exists()
    assert not stale.exists()
    saved = torch.load(tmp_path / "ck_last.pt", weights_only=False)
    assert saved["iter"] >= 2
    (tmp_path / "r").mkdir()
    resumed = train_run(data, tmp_path / "r", "-checkpoint_start_from", tmp_path / "ck_last.pt",
                        "-max_iters", saved["iter"] + 1)
    assert resumed["iter"] == saved["iter"] + 1


SIZE_FLAGS = ["-fc_dim", "-tiny_channels", "-rpn_num_filters", "-sampler_batch_size", "-rnn_size",
              "-input_encoding_size", "-save_checkpoint_every", "-test_num_proposals", "-losses_log_every"]


def test_sizes_of_zero_are_refused_where_declared(data, tmp_path, capsys):
    for flag in SIZE_FLAGS:   # in-process: parse (common.cli) exits 2 with one line naming the flag
        with pytest.raises(SystemExit) as e:
            parse(train.TrainOptions, SMALL + data + [flag, "0"])
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and err[0].startswith(f"error: {flag} must be >= 1"), flag
    args = data + ["-gpu", "-1", "-rnn_size", "0", "-checkpoint_path", str(tmp_path / "ck" / "c.pt")]
    out = subprocess.run([sys.executable, "densecap/train.py"] + args, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parents[2])   # and through the real command
    assert out.returncode == 2 and out.stderr.strip().splitlines() == ["error: -rnn_size must be >= 1 (got 0)"]
    assert not (tmp_path / "ck").exists()


def test_evaluate_model_refuses_num_proposals_0_and_a_truncated_checkpoint(data, tmp_path, tiny_checkpoint):
    def cli(*args):
        return subprocess.run([sys.executable, "densecap/evaluate_model.py", "-gpu", "-1", "-metric", "detmap"]
                              + data + [str(a) for a in args], capture_output=True, text=True, timeout=120,
                              cwd=Path(__file__).parents[2])
    out = cli("-checkpoint", tmp_path / "any.pt", "-num_proposals", "0")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == ["error: -num_proposals must be >= 1 (got 0)"]
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_checkpoint.read_bytes()[:40000])
    out = cli("-checkpoint", cut, "-output_json", tmp_path / "r.json")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1 and "cut.pt" in out.stderr
    assert not (tmp_path / "r.json").exists()


def test_a_diverged_run_exits_1_with_one_error_line(data, tmp_path):
    # anchors of scale 1 on 64-px images with 256 samples: the first loss is NaN (end_objectness_loss)
    args = ["-cnn", "tiny", "-tiny_channels", "32", "-fc_dim", "64", "-rpn_num_filters", "32", "-rnn_size", "32",
            "-input_encoding_size", "32", "-gpu", "-1", "-max_iters", "2", "-checkpoint_path", str(tmp_path / "c.pt")]
    out = subprocess.run([sys.executable, "densecap/train.py"] + args + data, capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).parents[2])
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1 and last.startswith("error: loss is NaN at iteration 1 ("), out.stderr[-2000:]
    assert "end_objectness_loss nan" in last and "no step was taken for it" in last and "Traceback" not in out.stderr
    assert not list(tmp_path.glob("c*.pt"))


def test_truncated_checkpoint_start_from_is_one_line(data, tiny_checkpoint, tmp_path, monkeypatch, capsys):
    """No -gpu on a machine without CUDA: the note names densecap's -gpu -1; a cut checkpoint is one line."""
    from densecap.tests.cli import assert_cpu_note_then_one_error, main_without_gpu
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_checkpoint.read_bytes()[:40000])
    small = [a for a in SMALL if a not in ("-gpu", "-1")]
    out = main_without_gpu(train, train.TrainOptions, small + data + [
        "-checkpoint_start_from", cut, "-max_iters", 1, "-checkpoint_path", tmp_path / "c.pt"], monkeypatch, capsys)
    assert_cpu_note_then_one_error(out, "cut.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pt"]


def test_every_architecture_flag_reaches_the_config_and_the_checkpoint_rebuilds_it(tmp_path):
    """ModelConfig.from_options takes each flag named as a config field (none copied by hand), the
    checkpoint stores the config and load_model rebuilds it; train.py builds nothing from `opt` after that."""
    from densecap.checkpoints import save_model
    from densecap.model import ModelConfig
    given = dict(cnn="tiny", tiny_channels=8, fc_dim=24, rpn_num_filters=12, anchor_scale=0.25,
                 input_encoding_size=10, rnn_size=14, drop_prob=0.25, sampler_batch_size=16,
                 sampler_high_thresh=0.6, sampler_low_thresh=0.2, train_remove_outbounds_boxes=0,
                 mid_box_reg_weight=0.5, mid_objectness_weight=0.25, end_box_reg_weight=0.75,
                 end_objectness_weight=0.125, captioning_weight=2.0, box_reg_decay=1e-3, lm_input="roi")
    argv = [a for k, v in given.items() for a in (f"-{k}", str(v))] + ["-region_code_norm", "1"]
    cfg = ModelConfig.from_options(parse(train.TrainOptions, argv), vocab_size=7, seq_length=9)
    assert cfg == ModelConfig(vocab_size=7, seq_length=9, region_code_norm=True, **given)
    assert cfg.region_code_norm is True
    cfg.anchors = [[10, 20], [30, 15]]   # fields without a flag travel too
    model = DenseCapModel(cfg)
    save_model(tmp_path / "m.pt", model, {str(i): "w" for i in range(1, 8)})
    loaded, _, ckpt = load_model(tmp_path / "m.pt")
    assert loaded.cfg == cfg and ckpt["config"]["anchors"] == [[10, 20], [30, 15]]
    ckpt["config"]["lstm_layers"] = 2   # a field this code does not know: one line, not a TypeError
    checkpoint.save(tmp_path / "new.pt", "densecap", ckpt)
    with pytest.raises(UserError, match="new.pt: .*lstm_layers"):
        load_model(tmp_path / "new.pt")
