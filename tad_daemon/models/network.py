"""Building the U-Net of a model, with attention through torch's fused kernel."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from a_unet.blocks import Attention
from torch import nn

from tad_daemon.models.adp import UNetV0


class FusedAttention(nn.Module):
    """a-unet's AttentionBase computed with scaled_dot_product_attention.

    Same parameter (`blocks.0` is the output projection) and key names, so the seed's checkpoints load
    unchanged; same maths to float rounding, 25 % faster on CPU, far less memory on GPU.
    """

    def __init__(self, to_out: nn.Linear, num_heads: int):
        super().__init__()
        self.blocks = nn.ModuleList([to_out])
        self.num_heads = num_heads

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, n, _ = q.shape
        q, k, v = (t.reshape(b, t.shape[1], self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.blocks[0](out.transpose(1, 2).reshape(b, n, -1))


class PositionalUNet(nn.Module):
    """A UNetV0 that also sees where in the one-shot each sample is (a ramp channel: 0 at the onset, 1 at
    32768 samples).

    A convolutional U-Net does not know where it is; every one-shot starts at sample 0 and decays, so
    knowing the time since the onset makes "silence after the decay" easy to learn. Measured on a small CPU
    preset trained on kicks: the generated noise floor was 3 dB lower after the same number of steps.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        ramp = torch.arange(x.shape[-1], device=x.device, dtype=x.dtype) / POSITION_SCALE
        return self.net(torch.cat([x, ramp.expand(x.shape[0], 1, -1)], dim=1), t, **kwargs)


POSITION_SCALE = 32768.0
VELOCITY_HARMONICS = 4  # sin and cos of k*pi*velocity, k = 1..4: enough for a smooth curve over 0..1


class KindUNet(nn.Module):
    """A U-Net that makes every drum kind it was trained on, at any velocity: `net(x, t, kinds, velocity)`.

    `kinds` (batch, len(self.kinds)) weighs the kinds' embeddings (one-hot for one kind, fractions for a
    blend, all zero for "any kind"); `velocity` (batch,) is 0..1, or negative for "any velocity". Both
    become one vector added to the time conditioning that modulates every block (a-unet's `features`), so
    the U-Net itself is the unconditional one: both embeddings start at zero, and a new KindUNet samples
    exactly as the model its U-Net's weights came from.
    """

    def __init__(self, net: nn.Module, kinds: list[str], features: int):
        super().__init__()
        self.net, self.kinds = net, list(kinds)
        self.kind_embedding = nn.Parameter(torch.zeros(len(kinds), features))
        self.velocity_embedding = nn.Linear(2 * VELOCITY_HARMONICS, features)
        nn.init.zeros_(self.velocity_embedding.weight)
        nn.init.zeros_(self.velocity_embedding.bias)

    def conditioning(self, kinds: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        k = torch.arange(1, VELOCITY_HARMONICS + 1, device=velocity.device, dtype=velocity.dtype)
        angle = math.pi * velocity.clamp(0, 1)[:, None] * k
        known = (velocity >= 0).to(velocity.dtype)[:, None]
        return kinds @ self.kind_embedding + known * self.velocity_embedding(torch.cat([angle.sin(), angle.cos()], 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, kinds: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        return self.net(x, t, features=self.conditioning(kinds.to(x.dtype), velocity.to(x.dtype)))


def build_unet(arch: dict, fused_attention: bool = True) -> nn.Module:
    """The seed's UNetV0 (v-diffusion velocity net: `net(x_t, t)`) for a stereo architecture dict.

    `arch` holds UNetV0's arguments, plus `position: true` for a PositionalUNet and `kinds: [...]` for a
    KindUNet.
    """
    arch = dict(arch)
    position = bool(arch.pop("position", False))
    kinds = arch.pop("kinds", None)
    net = UNetV0(dim=1, in_channels=2 + position, out_channels=2, **arch)
    if fused_attention:
        for module in net.modules():
            if isinstance(module, Attention):
                module.attention = FusedAttention(module.attention.blocks[0], arch["attention_heads"])
    net = PositionalUNet(net) if position else net
    return KindUNet(net, kinds, arch.get("modulation_features", MODULATION_FEATURES)) if kinds else net


MODULATION_FEATURES = 1024  # UNetV0's default width of the time conditioning


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
