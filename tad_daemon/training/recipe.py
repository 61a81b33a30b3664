"""The seed's training recipe, one small piece each: the v-diffusion loss, the moving average of the weights
(EMA) with its warm-up, and gradient checkpointing of the U-Net's blocks for the low-memory mode."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from a_unet.apex import Block
from torch import nn
from torch.utils.checkpoint import checkpoint


def v_loss(net: nn.Module, x0: torch.Tensor, gen: torch.Generator, **cond: torch.Tensor) -> torch.Tensor:
    """audio-diffusion-pytorch's VDiffusion loss, drawing from `gen` in the same order (time, then noise);
    `cond` goes to the net as it is (a KindUNet's kinds and velocity).

    t ~ U(0, 1), x_t = cos(t*pi/2) x0 + sin(t*pi/2) noise, target v = cos(t*pi/2) noise - sin(t*pi/2) x0.
    """
    b = x0.shape[0]
    t = torch.rand(b, device=x0.device, generator=gen)
    noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=gen)
    angle = (t * math.pi / 2).view(b, *([1] * (x0.ndim - 1)))
    alpha, sigma = torch.cos(angle), torch.sin(angle)
    x_t = alpha * x0 + sigma * noise
    v = alpha * noise - sigma * x0
    return F.mse_loss(net(x_t, t, **cond), v)


class EMA:
    """Exponential moving average of a net's weights, with ema_pytorch's warm-up (as the seed uses it).

    decay = 1 - (1 + step / inv_gamma) ** -power, at most `beta`: the average follows the net closely at
    first and settles to `beta` (0.995 reaches its cap after ~2,000 updates at power 0.7). The first update
    copies the net. `device` may differ from the net's (the CPU, in low-memory mode on a GPU).
    """

    def __init__(self, net: nn.Module, beta: float = 0.995, power: float = 0.7, inv_gamma: float = 1.0,
                 update_every: int = 1, device: torch.device | None = None):
        self.beta, self.power, self.inv_gamma, self.update_every = beta, power, inv_gamma, update_every
        self.step = 0
        self.weights = {k: v.detach().to(device or v.device, copy=True) for k, v in net.state_dict().items()}

    def decay(self) -> float:
        epoch = self.step - 1
        if epoch <= 0:
            return 0.0
        return min(self.beta, 1 - (1 + epoch / self.inv_gamma) ** -self.power)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.step += 1
        if (self.step - 1) % self.update_every:
            return
        weight = 1.0 - self.decay()
        for k, v in net.state_dict().items():
            ema = self.weights[k]
            if ema.is_floating_point():
                ema.lerp_(v.to(ema.device, ema.dtype), weight)
            else:
                ema.copy_(v)

    def state_dict(self) -> dict:
        return {"step": self.step, "weights": self.weights}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        for k, v in state["weights"].items():
            self.weights[k].copy_(v)


def checkpoint_blocks(net: nn.Module) -> int:
    """Recompute each item of the U-Net's blocks (resnet, attention, modulation, up/downsampling) in the
    backward pass instead of keeping its activations; returns how many items were wrapped.

    Only the item's input is kept, about one tensor in six. The forward of each item is replaced on the
    instance, so parameter names (and model files) stay exactly as they were.
    """
    count = 0
    for module in net.modules():
        if isinstance(module, Block):
            for item in module.block.blocks:
                if not isinstance(item, Block):  # inner blocks are wrapped item by item themselves
                    item.forward = _recomputed(item.forward)
                    count += 1
    return count


def _recomputed(forward):
    def run(*args):
        if torch.is_grad_enabled():
            return checkpoint(forward, *args, use_reentrant=False)
        return forward(*args)

    return run
