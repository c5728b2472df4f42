"""DenseCap's fully convolutional localization network (FCLN), as DenseCapModel.lua builds it.

    image -> conv_net1 (VGG conv1_1..pool2, never trained) -> conv_net2 (conv3_1..relu5_3, fine-tuned
    after -finetune_cnn_after; pool5 dropped, stride 16) -> LocalizationLayer (RPN, sampler / NMS,
    bilinear 7x7 RoI features) -> recog_base (fc6, fc7) -> objectness, final box regression, and the
    region LanguageModel (region code -> Linear + ReLU -> LSTM).

`cnn="tiny"` swaps VGG for four conv+pool blocks of the same stride and field centres, so tests and
the shapes demo train in seconds on a CPU; everything after the trunk is the same code.
"""
import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.caption_lm import LanguageModel
from common.device import autocast
from densecap import box_utils
from densecap.localization import ANCHORS, LocalizationLayer

VGG_MEAN_BGR = (103.939, 116.779, 123.68)
VGG16_BLOCKS = (2, 2, 3, 3, 3)  # 3x3 convolutions per block; a 2x2 max pool after each block but the last
VGG16_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)


@dataclasses.dataclass
class ModelConfig:
    vocab_size: int
    seq_length: int = 15
    cnn: str = "vgg16"              # vgg16 | tiny
    vgg_widths: list = None         # the 13 VGG-16 conv widths; None = VGG-16's (64, 64, 128, ... 512)
    tiny_channels: int = 64         # width of the tiny trunk's last conv
    tiny_input_scale: float = 1 / 64  # the tiny trunk trains from scratch: bring its input near unit scale
    fc_dim: int = 4096              # fc6/fc7 width (VGG: 4096)
    rpn_num_filters: int = 256
    anchor_scale: float = 1.0
    anchors: list = None            # (w, h) pairs; None = the original 12 (localization.ANCHORS)
    input_encoding_size: int = 512
    rnn_size: int = 512
    drop_prob: float = 0.5
    sampler_batch_size: int = 256
    sampler_high_thresh: float = 0.7
    sampler_low_thresh: float = 0.3
    train_remove_outbounds_boxes: int = 1
    mid_box_reg_weight: float = 0.05
    mid_objectness_weight: float = 0.1
    end_box_reg_weight: float = 0.1
    end_objectness_weight: float = 0.1
    captioning_weight: float = 1.0
    box_reg_decay: float = 5e-5
    std: float = 0.01
    region_code_norm: bool = False  # new: LayerNorm on the region code before the language model
    region_code_standardize: bool = False  # new: per-feature running standardization of the region code (first)
    lm_input: str = "fc7"           # new: fc7 (the original) | roi: the language model reads the RoI features

    @classmethod
    def from_options(cls, opt, **given):
        """The config train.py's options describe: every field that has a flag of the same name (a 0/1 flag
        becomes a bool field's value), then `given` (what the data decides: vocab_size, seq_length)."""
        values = {f.name: (bool(getattr(opt, f.name)) if f.type is bool else getattr(opt, f.name))
                  for f in dataclasses.fields(cls) if hasattr(opt, f.name)}
        return cls(**{**values, **given})

    def to_dict(self) -> dict:
        """What a checkpoint stores (plain types, weights_only-loadable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        """The config a checkpoint stored; a field this code does not know is a ValueError naming it."""
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown model config field(s) {', '.join(unknown)} (a newer densecap wrote it?)")
        return cls(**d)


class RunningStandardize(nn.Module):
    """(x - mean) / std per feature, with the mean and variance running averages over the training batches
    (a cumulative average over the first 1 / momentum batches, then exponential), never one batch's own:
    a batch holds the regions of one image, often all of one shape, whose own statistics would subtract
    that shape's colour away. The statistics are constants to the gradient; eval mode only reads them."""

    def __init__(self, dim, momentum=0.01, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("sq_mean", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        if self.training and x.shape[0] > 0:
            with torch.no_grad():
                m = max(self.momentum, 1.0 / float(self.count + 1))
                self.mean.lerp_(x.mean(0), m)
                self.sq_mean.lerp_(x.pow(2).mean(0), m)
                self.count += 1
        var = (self.sq_mean - self.mean.pow(2)).clamp(min=0)
        return (x - self.mean) / (var + self.eps).sqrt()


class InputScale(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


def build_vgg16_trunk(widths=VGG16_WIDTHS):
    """conv1_1..relu5_3 as loadcaffe builds VGG-16 for densecap (pool5 dropped): 3x3 convolutions, ReLU,
    2x2 max pooling in ceil mode as Caffe's (a 479-px side gives 240, 120, 60, 30), at any widths."""
    layers, c_in, i = [], 3, 0
    for b, n in enumerate(VGG16_BLOCKS):
        for _ in range(n):
            layers += [nn.Conv2d(c_in, widths[i], 3, padding=1), nn.ReLU(inplace=True)]
            c_in, i = widths[i], i + 1
        if b < len(VGG16_BLOCKS) - 1:
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
    return layers


def build_trunk(cfg: ModelConfig):
    """(conv_net1, conv_net2, channels): the frozen and the fine-tunable halves of the conv trunk."""
    if cfg.cnn == "vgg16":
        widths = list(cfg.vgg_widths or VGG16_WIDTHS)
        if len(widths) != len(VGG16_WIDTHS):
            raise ValueError(f"vgg_widths needs {len(VGG16_WIDTHS)} widths, got {len(widths)}")
        features = nn.Sequential(*build_vgg16_trunk(widths))  # slices keep torchvision's state_dict names
        return features[:10], features[10:], widths[-1]  # conv1_1..pool2 | conv3_1..relu5_3
    if cfg.cnn == "tiny":
        c = cfg.tiny_channels
        widths = [3, c // 4, c // 2, c, c]
        layers = [InputScale(cfg.tiny_input_scale)]  # Caffe-range input (about +-128) -> about +-2
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2)]
        return nn.Sequential(), nn.Sequential(*layers), c
    raise ValueError(f"unknown cnn {cfg.cnn!r} (vgg16 or tiny)")


def build_recog_base(in_dim, fc_dim, drop_prob=0.5):
    """VGG's fc6/fc7: Linear + ReLU + Dropout, twice (dropout 0.5 as in VGG's own classifier)."""
    return nn.Sequential(nn.Linear(in_dim, fc_dim), nn.ReLU(inplace=True), nn.Dropout(drop_prob),
                         nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True), nn.Dropout(drop_prob))


def load_torchvision_vgg16(model, state_dict):
    """Copy a torchvision vgg16 state_dict (conv trunk, fc6, fc7) into `model`, folding torchvision's
    RGB [0,1] mean/std input normalisation into conv1_1 so the model keeps Caffe's BGR 0-255 input."""
    sd = dict(state_dict)
    w, b = sd["features.0.weight"].clone(), sd["features.0.bias"].clone()
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    caffe_mean_rgb = torch.tensor(VGG_MEAN_BGR[::-1])
    # x_tv[c] = ((x_caffe_rgb[c] + caffe_mean[c]) / 255 - mean[c]) / std[c]; our input is BGR
    scale = 1.0 / (255.0 * std)
    shift = (caffe_mean_rgb / 255.0 - mean) / std
    b = b + (w * shift.view(1, 3, 1, 1)).sum((1, 2, 3))
    w = (w * scale.view(1, 3, 1, 1)).flip(1)
    sd["features.0.weight"], sd["features.0.bias"] = w, b
    trunk = {}
    convs = sorted({int(k.split(".")[1]) for k in sd if k.startswith("features.")})  # conv layer indices
    ours = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and n.startswith("conv_net")]
    for i, name in zip(convs, ours):
        trunk[f"{name}.weight"], trunk[f"{name}.bias"] = sd[f"features.{i}.weight"], sd[f"features.{i}.bias"]
    trunk["recog_base.0.weight"], trunk["recog_base.0.bias"] = sd["classifier.0.weight"], sd["classifier.0.bias"]
    trunk["recog_base.3.weight"], trunk["recog_base.3.bias"] = sd["classifier.3.weight"], sd["classifier.3.bias"]
    missing = model.load_state_dict(trunk, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    return model


class DenseCapModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.conv_net1, self.conv_net2, channels = build_trunk(cfg)
        self.localization = LocalizationLayer(
            channels, cfg.rpn_num_filters, cfg.anchors or ANCHORS, cfg.anchor_scale, cfg.sampler_batch_size,
            cfg.sampler_high_thresh, cfg.sampler_low_thresh, cfg.train_remove_outbounds_boxes, cfg.mid_box_reg_weight,
            cfg.mid_objectness_weight, cfg.box_reg_decay)
        self.recog_base = build_recog_base(channels * 7 * 7, cfg.fc_dim, cfg.drop_prob)
        self.objectness = nn.Linear(cfg.fc_dim, 1)
        self.box_reg = nn.Linear(cfg.fc_dim, 4)
        nn.init.normal_(self.objectness.weight, 0, cfg.std)
        nn.init.zeros_(self.objectness.bias)
        nn.init.zeros_(self.box_reg.weight)
        nn.init.zeros_(self.box_reg.bias)
        # LanguageModel.lua's image encoder: region code -> input_encoding_size, ReLU. A trunk trained from
        # scratch at a high learning rate grows fc7 codes to ~100, saturating the LSTM so that it learns only
        # the caption prior; region_code_norm (off for VGG, as the original) normalises them first.
        # region_code_standardize scales each feature by its own spread instead: the LayerNorm scales the
        # whole code by its overall spread, so the colour of a shape, which sits in low-variance features of
        # fc7, stays too small for the LSTM to pick up (an LM trained on fixed shapes codes: 29% vs 94% right)
        # lm_input "roi": the language model reads the 7x7 RoI features through its own Linear instead of fc7,
        # a path that the box and objectness losses do not train (on the shapes world they wash the colour
        # out of fc6/fc7: linear probes read it from the RoI features at 98%, from the trained fc7 at 49%)
        if cfg.lm_input not in ("fc7", "roi"):
            raise ValueError(f"unknown lm_input {cfg.lm_input!r} (fc7 or roi)")
        code_dim = cfg.fc_dim if cfg.lm_input == "fc7" else channels * 7 * 7
        norm = [RunningStandardize(code_dim)] if cfg.region_code_standardize else []
        norm += [nn.LayerNorm(code_dim)] if cfg.region_code_norm else []
        self.lm_encoder = nn.Sequential(*norm, nn.Linear(code_dim, cfg.input_encoding_size), nn.ReLU(inplace=True))
        # one LSTM layer, no dropout: DenseCapModel.lua never passes drop_prob to its LanguageModel
        self.lm = LanguageModel(cfg.vocab_size, cfg.input_encoding_size, cfg.rnn_size, 1, 0.0, cfg.seq_length)
        for p in self.conv_net1.parameters():
            p.requires_grad_(False)
        self.precision = "fp32"  # forward_test's arithmetic; see to_inference

    def extract_features(self, image):
        with torch.no_grad():
            x = self.conv_net1(image)
        return self.conv_net2(x)

    # ------------------------------------------------------------------ training
    def forward(self, *args, **kwargs):
        """model(...) is forward_train, so that DistributedDataParallel (which wraps __call__) sees it."""
        return self.forward_train(*args, **kwargs)

    def forward_train(self, image, gt_boxes, gt_labels, finetune_cnn=False, generator=None):
        """One image (1, 3, H, W), its GT boxes (B, 4) xcycwh and labels (B, L) -> dict of weighted losses."""
        cfg = self.cfg
        H, W = image.shape[-2:]
        if finetune_cnn:
            feats = self.extract_features(image)
        else:
            with torch.no_grad():
                feats = self.extract_features(image)
        roi_feats, roi_boxes, num_pos, pos_gt_idx, losses = self.localization.forward_train(
            feats, (H, W), gt_boxes, generator)
        codes = self.recog_base(roi_feats.flatten(1))
        scores = self.objectness(codes).squeeze(1)
        target = torch.zeros_like(scores)
        target[:num_pos] = 1
        losses["end_objectness_loss"] = cfg.end_objectness_weight * F.binary_cross_entropy_with_logits(scores, target)
        if num_pos:
            pos_codes, pos_boxes = codes[:num_pos], roi_boxes[:num_pos]
            trans = self.box_reg(pos_codes)
            target_trans = box_utils.invert_box_transform(pos_boxes, gt_boxes[pos_gt_idx].float())
            # BoxRegressionCriterion ignores boxes whose target offsets exceed 10 in any coordinate
            ok = target_trans.abs().max(1).values <= 10
            if ok.any():
                losses["end_box_reg_loss"] = cfg.end_box_reg_weight * F.smooth_l1_loss(trans[ok], target_trans[ok])
            labels = gt_labels[pos_gt_idx]
            lm_codes = pos_codes if cfg.lm_input == "fc7" else roi_feats[:num_pos].flatten(1)
            logits = self.lm(self.lm_encoder(lm_codes), labels)
            # torch-rnn's TemporalCrossEntropyCriterion: summed over time, averaged over the batch
            tokens = (labels > 0).sum() + labels.shape[0]  # the words plus one END per region
            per_region = self.lm.loss(logits, labels) * tokens / labels.shape[0]
            losses["captioning_loss"] = cfg.captioning_weight * per_region
        return losses

    # ------------------------------------------------------------------ inference
    def to_inference(self, precision="fp32"):
        """Ready for forward_test at `precision` (fp32 | bf16 | fp16, as common.device.resolve_precision
        gives it): eval mode; for bf16/fp16 the conv trunk and fc6/fc7 keep their weights in that dtype
        (autocast would cast fc6's 100M weights on every image) and the trunk runs channels-last."""
        self.eval()
        self.precision = precision
        if precision != "fp32":
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            for part in (self.conv_net1, self.conv_net2, self.recog_base):
                part.to(dtype=dtype, memory_format=torch.channels_last)
        return self

    @torch.inference_mode()
    def forward_test(self, image, rpn_nms_thresh=0.7, final_nms_thresh=0.3, num_proposals=1000,
                     clip_final_boxes=True, captions=True):
        """-> (boxes (N, 4) xcycwh, scores (N,) raw final objectness, seqs (N, seq_length) or None),
        sorted by score after the final NMS. Captions are sampled only for the boxes NMS keeps: the
        original sampled all proposals then dropped most; greedy decoding is per region, so the kept
        captions are the same.

        At bf16/fp16 (to_inference) only the trunk and fc6/fc7 run in it, under autocast: the RPN, the
        RoI sampling, box coordinates, both NMS and the language model stay float32 (a bf16 box
        coordinate near 700 px is only good to 4 px)."""
        H, W = image.shape[-2:]
        if min(H, W) < 32:  # smaller than the trunk's stride (or the anchors): pad with the mean colour (0)
            image = F.pad(image, (0, max(0, 32 - W), 0, max(0, 32 - H)))
        precision = getattr(self, "precision", "fp32")
        if precision != "fp32":
            image = image.contiguous(memory_format=torch.channels_last)
        with autocast(image.device, precision):
            feats = self.extract_features(image)
        feats = feats.float().contiguous()  # no-ops at fp32
        roi_feats, boxes, _ = self.localization.forward_test(feats, (H, W), rpn_nms_thresh, num_proposals)
        if boxes.shape[0] == 0:
            return boxes, boxes.new_zeros(0), (boxes.new_zeros(0, self.cfg.seq_length, dtype=torch.long)
                                                if captions else None)
        with autocast(image.device, precision):
            codes = self.recog_base(roi_feats.flatten(1))
        codes = codes.float()
        scores = self.objectness(codes).squeeze(1)
        final = box_utils.apply_box_transform(boxes, self.box_reg(codes))
        if clip_final_boxes:
            final, _ = box_utils.clip_boxes(final, H, W)
        if final_nms_thresh > 0:
            keep = box_utils.nms(final, scores, final_nms_thresh)
        else:
            keep = scores.argsort(descending=True)
        final, scores = final[keep], scores[keep]
        codes = codes[keep] if self.cfg.lm_input == "fc7" else roi_feats[keep].flatten(1).float()
        seqs = greedy_captions(self.lm, self.lm_encoder(codes)) if captions else None
        return final, scores, seqs


def greedy_captions(lm, feats):
    """lm.sample(feats)[0] (greedy word ids (B, seq_length), 0 from END on), with each region dropped from
    the batch once its caption has ended: the original's captions are 4-6 words of at most 15, so most of
    the LSTM steps and 10,000-word logit layers sample_sequences runs for finished captions are skipped.
    Each region's steps are its own, so its words are the same (the log-probabilities are not computed)."""
    step = lm.decode_step()
    logprobs, state = lm.start(feats, step)
    seq = torch.zeros(feats.shape[0], lm.seq_length, dtype=torch.long, device=feats.device)
    rows = torch.arange(feats.shape[0], device=feats.device)  # the regions still in the batch
    for t in range(lm.seq_length):
        ix = logprobs.max(1).indices
        going = (ix != lm.end_ix).nonzero().squeeze(1)
        seq[rows[going], t] = ix[going] + 1  # column k is word k + 1
        if t == lm.seq_length - 1 or len(going) == 0:
            break
        if len(going) < len(rows):
            rows, ix, state = rows[going], ix[going], tuple(s[going] for s in state)
        logprobs, state = step(ix, state)
    return seq
