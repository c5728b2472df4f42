"""One DCGAN iteration (main.lua's fDx then fGx) and the precision context it runs under."""
import contextlib

import torch
import torch.nn.functional as F


def autocast(device: torch.device, amp: bool):
    """bfloat16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16/AMX); else a no-op."""
    if amp and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if amp and device.type == "cpu" and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def train_step(G, D, optG, optD, real, noise, precision=contextlib.nullcontext(), D_sync=None):
    """Update D on a real and a fake batch (two backward passes, as main.lua), then G. -> (errD, errG).

    D sees the real and the fake batch separately, so its BatchNorm normalises each with its own
    statistics (as the original). For the G step D is run again on the same fake batch after its
    update (pytorch/examples does this too; main.lua reused D's output from before its update but
    backpropagated through the updated weights). D's weights need no gradient then, so they get none.
    `D_sync` is a DistributedDataParallel-wrapped D (or None); its first backward skips the all-reduce.
    """
    Dt = D_sync or D
    ones = torch.ones(real.size(0), device=real.device)
    zeros = torch.zeros(real.size(0), device=real.device)
    optD.zero_grad(set_to_none=True)
    with Dt.no_sync() if D_sync is not None else contextlib.nullcontext():  # forward and backward inside
        with precision:
            out_real = Dt(real)
        errD_real = F.binary_cross_entropy_with_logits(out_real.float(), ones)
        errD_real.backward()
    with precision:
        fake = G(noise)
        out_fake = Dt(fake.detach())
    errD_fake = F.binary_cross_entropy_with_logits(out_fake.float(), zeros)
    errD_fake.backward()
    optD.step()

    optG.zero_grad(set_to_none=True)
    D.requires_grad_(False)
    try:
        with precision:
            out = D(fake)
        errG = F.binary_cross_entropy_with_logits(out.float(), ones)
        errG.backward()
    finally:
        D.requires_grad_(True)
    optG.step()
    return (errD_real + errD_fake).detach(), errG.detach()
