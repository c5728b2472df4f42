"""One DCGAN iteration (main.lua's fDx then fGx) and the precision context it runs under."""
import contextlib

import torch
import torch.nn.functional as F

from common.device import native_bf16


def autocast(device: torch.device, amp: bool):
    """bfloat16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16/AMX); else a no-op."""
    if amp and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if amp and device.type == "cpu" and native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(G, D, optG, optD, real, noise, precision=contextlib.nullcontext(), D_sync=None):
    """Update D on a real and a fake batch (two backward passes, as main.lua), then G. -> (errD, errG).

    D sees the real and the fake batch separately, so its BatchNorm normalises each with its own
    statistics (as the original). Like main.lua, the G step reuses D's forward pass on the fake batch
    instead of running D again (pytorch/examples runs it again): G's gradient is taken through D as it
    was when it scored that batch, i.e. before D's update (main.lua mixed the old activations with the
    updated weights). That saves one of the three D forward passes; D's weights get no gradient from
    the G loss. `D_sync` is a DistributedDataParallel-wrapped D (or None); its first backward skips the
    all-reduce.
    """
    Dt = D_sync or D
    ones = torch.ones(real.size(0), device=real.device)
    zeros = torch.zeros(real.size(0), device=real.device)
    optD.zero_grad(set_to_none=True)
    optG.zero_grad(set_to_none=True)
    with Dt.no_sync() if D_sync is not None else contextlib.nullcontext():  # forward and backward inside
        with precision:
            out_real = Dt(real)
        errD_real = F.binary_cross_entropy_with_logits(out_real.float(), ones)
        errD_real.backward()
    with precision:
        fake = G(noise)
        fake_in = fake.detach().requires_grad_(True)  # D's graph ends here; G's is joined by hand below
        out_fake = Dt(fake_in)
    errD_fake = F.binary_cross_entropy_with_logits(out_fake.float(), zeros)
    errG = F.binary_cross_entropy_with_logits(out_fake.float(), ones)
    grad_fake, = torch.autograd.grad(errG, fake_in, retain_graph=True)  # G loss -> image, D's weights untouched
    errD_fake.backward(inputs=list(D.parameters()))  # fake loss -> D's weights (all-reduced under DDP)
    optD.step()
    fake.backward(grad_fake)
    optG.step()
    return (errD_real + errD_fake).detach(), errG.detach()
