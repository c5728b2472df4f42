"""engine.train_step: its gradients and updates against a step written out by hand on copies of the nets."""
import copy

import torch
import torch.nn.functional as F

from dcgan.engine import train_step
from dcgan.model import GANConfig, build


def _nets(seed=0):
    torch.manual_seed(seed)
    G, D = build(GANConfig(nz=8, ngf=4, ndf=4, nc=1, fineSize=32))
    return G, D


def _grads(loss, params):
    return torch.autograd.grad(loss, list(params))


def test_one_step_matches_a_hand_written_step():
    G, D = _nets()
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)  # the nets before the step, for the expected values
    optG = torch.optim.SGD(G.parameters(), lr=0.5)
    optD = torch.optim.SGD(D.parameters(), lr=0.5)
    real = torch.rand(6, 1, 32, 32) * 2 - 1
    noise = torch.randn(6, 8, 1, 1)
    errD, errG = train_step(G, D, optG, optD, real, noise)

    # expected: D's loss on the real batch and on the (detached) fake batch, each batch through D on its own
    fake0 = G0(noise)
    lossD = (F.binary_cross_entropy(torch.sigmoid(D0(real)), torch.ones(6))
             + F.binary_cross_entropy(torch.sigmoid(D0(fake0.detach())), torch.zeros(6)))
    gD = _grads(lossD, D0.parameters())
    # G's non-saturating loss through D before its update (the same forward pass D's fake loss used)
    D0.requires_grad_(False)
    lossG = F.binary_cross_entropy(torch.sigmoid(D0(fake0)), torch.ones(6))
    gG = _grads(lossG, G0.parameters())

    torch.testing.assert_close(errD, lossD.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(errG, lossG.detach(), rtol=1e-5, atol=1e-6)
    for p, g, p0 in zip(D.parameters(), gD, D0.parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(p.detach(), p0 - 0.5 * g, rtol=1e-4, atol=1e-6)  # one SGD step
    for p, g, p0 in zip(G.parameters(), gG, G0.parameters()):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(p.detach(), p0 - 0.5 * g, rtol=1e-4, atol=1e-6)


def test_g_gradient_is_taken_before_d_moves():
    """The check above can tell the two orders apart: through the updated D, G's gradient differs."""
    G, D = _nets(1)
    G0 = copy.deepcopy(G)
    optG = torch.optim.SGD(G.parameters(), lr=0.5)
    optD = torch.optim.SGD(D.parameters(), lr=0.5)
    real, noise = torch.rand(6, 1, 32, 32) * 2 - 1, torch.randn(6, 8, 1, 1)
    train_step(G, D, optG, optD, real, noise)
    D.requires_grad_(False)  # D after its update
    g_after = _grads(F.binary_cross_entropy_with_logits(D(G0(noise)), torch.ones(6)), G0.parameters())
    diff = max((p.grad - g).abs().max().item() for p, g in zip(G.parameters(), g_after))
    assert diff > 1e-4
