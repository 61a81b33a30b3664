"""Samplers for v-diffusion models, one short function each (after k-diffusion's sampling.py).

Time t runs from 1 (pure noise) to 0 (clean sound): x_t = cos(t*pi/2) * x0 + sin(t*pi/2) * noise, and the
network predicts the velocity v = cos(t*pi/2) * noise - sin(t*pi/2) * x0. All samplers here work on that
variance-preserving x_t, so a run started from t = 1 starts from exactly the noise it is given (the seed's
VSampler does the same), and a variation (SDEdit) is the same run started from t = strength.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from tad_daemon.limits import SAMPLERS, SCHEDULES

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t[batch]) -> predicted velocity
Progress = Callable[[int, int], None] | None
StepNoise = Callable[[], torch.Tensor]  # fresh unit noise shaped like the batch, for stochastic samplers


# Each sampler's schedule unless a model names its own. The seed's VSampler is defined on its linear schedule;
# parity needs exactly that. DPM-Solver++ steps evenly in log-SNR, which lands closer to a many-step reference
# than Karras's schedule at the same steps on our models (bench/samplers.py measures it; docs/benchmarks.md).
# The SDE variant goes with Karras's schedule, as in k-diffusion.
OWN_SCHEDULE = {"dpmpp-2m": "logsnr", "dpmpp-2m-sde": "karras", "vsampler": "linear"}


def alpha_sigma(t: float) -> tuple[float, float]:
    return math.cos(t * math.pi / 2), math.sin(t * math.pi / 2)


def linear_times(steps: int, t_start: float = 1.0) -> list[float]:
    """The seed's schedule: t evenly spaced from t_start to 0 (steps + 1 points)."""
    return torch.linspace(t_start, 0.0, steps + 1).tolist()


def quadratic_times(steps: int, t_start: float = 1.0) -> list[float]:
    """t falling as the square of an even ramp: dense near the clean end, where a few-step student's last
    step otherwise starts from much noise; halving the steps keeps every other time, so progressive
    distillation's grids nest (training/distill.py)."""
    return [t_start * (1 - k / steps) ** 2 for k in range(steps + 1)]


def karras_times(steps: int, t_start: float = 1.0, sigma_min: float = 0.002, rho: float = 7.0) -> list[float]:
    """Karras et al.'s schedule (dense near the clean end, where the seed's models hiss), as times.

    The noise-to-signal ratio s = tan(t*pi/2) is spaced evenly in s^(1/rho); t = 1 is s = inf, so the first
    point is t_start itself and the rest start from s = 160 (t = 0.996) at most.
    """
    if steps == 1:
        return [t_start, 0.0]
    s_max = min(math.tan(t_start * math.pi / 2), 160.0)
    s_min = min(sigma_min, s_max / 2)
    ramp = torch.linspace(0, 1, steps)
    inv = s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))
    sigmas = (inv**rho).tolist()
    times = [math.atan(s) * 2 / math.pi for s in sigmas]
    times[0] = t_start
    return times + [0.0]


def logsnr_times(steps: int, t_start: float = 1.0, sigma_min: float = 0.002) -> list[float]:
    """Evenly spaced in log signal-to-noise ratio (DPM-Solver's own choice), as times."""
    if steps == 1:
        return [t_start, 0.0]
    s_max = min(math.tan(t_start * math.pi / 2), 160.0)
    s_min = min(sigma_min, s_max / 2)
    log_s = torch.linspace(math.log(s_max), math.log(s_min), steps).tolist()
    times = [math.atan(math.exp(ls)) * 2 / math.pi for ls in log_s]
    times[0] = t_start
    return times + [0.0]


def times_for(schedule: str, steps: int, t_start: float = 1.0) -> list[float]:
    if schedule == "karras":
        return karras_times(steps, t_start)
    if schedule == "linear":
        return linear_times(steps, t_start)
    if schedule == "logsnr":
        return logsnr_times(steps, t_start)
    if schedule == "quadratic":
        return quadratic_times(steps, t_start)
    raise ValueError(f"unknown schedule {schedule!r} (known: {', '.join(SCHEDULES)})")


def _t_batch(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.float32)


@torch.no_grad()
def sample_vsampler(net: Net, x: torch.Tensor, times: list[float], progress: Progress = None) -> torch.Tensor:
    """audio-diffusion-pytorch's VSampler (DDIM on v), step for step: same noise and times, same output."""
    for i in range(len(times) - 1):
        a, s = alpha_sigma(times[i])
        a_next, s_next = alpha_sigma(times[i + 1])
        v = net(x, _t_batch(x, times[i])).float()
        x0 = a * x - s * v
        noise = s * x + a * v
        x = a_next * x0 + s_next * noise
        if progress:
            progress(i + 1, len(times) - 1)
    return x


@torch.no_grad()
def sample_dpmpp_2m(net: Net, x: torch.Tensor, times: list[float], progress: Progress = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022), data prediction, multistep, in the variance-preserving form.

    lambda = log(alpha/sigma); each step is exact for the linear part and second order in the model's
    clean-sound estimate, which is what makes 10-15 steps enough.
    """
    old_x0, old_h = None, None
    for i in range(len(times) - 1):
        a, s = alpha_sigma(times[i])
        a_next, s_next = alpha_sigma(times[i + 1])
        v = net(x, _t_batch(x, times[i])).float()
        x0 = a * x - s * v
        if s_next == 0.0:  # last step lands on the estimate itself
            x = x0
        else:
            h = math.log(a_next / s_next) - math.log(a / s)
            d = x0
            if old_x0 is not None:
                r = old_h / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * old_x0
            x = (s_next / s) * x - a_next * math.expm1(-h) * d
            old_h = h
        old_x0 = x0
        if progress:
            progress(i + 1, len(times) - 1)
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(net: Net, x: torch.Tensor, times: list[float], step_noise: StepNoise,
                        progress: Progress = None, eta: float = 1.0) -> torch.Tensor:
    """DPM-Solver++(2M) SDE (k-diffusion's sample_dpmpp_2m_sde, midpoint), in the variance-preserving form.

    Each step forgets part of the sound so far (eta of the step in log-SNR) and puts fresh noise in its place,
    so the model gets to correct its own earlier mistakes, which a not fully trained model makes: the bundled
    kick and perc at 20 steps are judged their class more often than with the deterministic 2M at 15
    (docs/models.md).
    """
    old_x0, old_h = None, None
    for i in range(len(times) - 1):
        a, s = alpha_sigma(times[i])
        a_next, s_next = alpha_sigma(times[i + 1])
        v = net(x, _t_batch(x, times[i])).float()
        x0 = a * x - s * v
        if s_next == 0.0:
            x = x0
        else:
            h = math.log(a_next / s_next) - math.log(a / s)
            eta_h = eta * h
            x = (s_next / s) * math.exp(-eta_h) * x - a_next * math.expm1(-h - eta_h) * x0
            if old_x0 is not None:
                r = old_h / h
                x = x - 0.5 * a_next * math.expm1(-h - eta_h) / r * (x0 - old_x0)
            if eta:
                x = x + s_next * math.sqrt(-math.expm1(-2 * eta_h)) * step_noise().to(x.device)
            old_h = h
        old_x0 = x0
        if progress:
            progress(i + 1, len(times) - 1)
    return x


def run(sampler: str, net: Net, x: torch.Tensor, times: list[float], progress: Progress = None,
        step_noise: StepNoise | None = None) -> torch.Tensor:
    """`step_noise` feeds the stochastic sampler; without it, unseeded noise (a run that cannot be remade)."""
    if sampler == "dpmpp-2m":
        return sample_dpmpp_2m(net, x, times, progress)
    if sampler == "dpmpp-2m-sde":
        return sample_dpmpp_2m_sde(net, x, times, step_noise or (lambda: torch.randn_like(x)), progress)
    if sampler == "vsampler":
        return sample_vsampler(net, x, times, progress)
    raise ValueError(f"unknown sampler {sampler!r} (known: {', '.join(SAMPLERS)})")


def noise(seeds: list[int], channels: int, length: int) -> torch.Tensor:
    """One noise per seed, drawn on the CPU so a seed means the same sound on every device and batch size."""
    return torch.stack(
        [torch.randn(channels, length, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    )


def step_noise(seeds: list[int], channels: int, length: int) -> StepNoise:
    """The stochastic sampler's noise: one stream per seed, going on where noise() stopped, so a seed fixes
    the whole run on every device and batch size (and item i never shares a stream with item i + 1)."""
    gens: list[torch.Generator] = []  # made on the first draw: deterministic samplers never pay for them

    def draw() -> torch.Tensor:
        if not gens:
            for seed in seeds:
                gens.append(torch.Generator().manual_seed(seed))
                torch.randn(channels, length, generator=gens[-1])  # the starting noise, drawn by noise()
        return torch.stack([torch.randn(channels, length, generator=g) for g in gens])

    return draw


def noised(x0: torch.Tensor, eps: torch.Tensor, strength: float) -> torch.Tensor:
    """SDEdit: the source taken to time t = strength (0 keeps it, 1 is pure noise)."""
    a, s = alpha_sigma(strength)
    return a * x0 + s * eps


# -- running the sampler backwards, and what it opens: morph, tweak, repaint ------------------------------------
@torch.no_grad()
def invert_ddim(net: Net, x: torch.Tensor, times: list[float], refine: int = 2,
                progress: Progress = None) -> torch.Tensor:
    """The noise that sample_vsampler on `times` (descending, 1 to 0) turns into `x`: DDIM run backwards.

    Each step solves the decoder's own step for its start by fixed-point iteration (`refine` extra network
    calls a step; 0 is the plain DDIM inversion, which guesses with the network at the wrong point and drifts:
    see docs/daw.md for the round-trip errors measured).
    """
    up = times[::-1]
    for i in range(len(up) - 1):
        a, s = alpha_sigma(up[i])
        a_next, s_next = alpha_sigma(up[i + 1])
        # The decoder's step from y at up[i + 1] lands on  keep * y + turn * v(y):  find the y that lands on x.
        keep, turn = a * a_next + s * s_next, s * a_next - a * s_next
        t_next = _t_batch(x, up[i + 1])
        y, best = x, x
        best_miss = torch.full((len(x),), math.inf, device=x.device)
        frozen = torch.zeros(len(x), 1, 1, dtype=torch.bool, device=x.device)
        for _ in range(refine + 1):
            v = net(y, t_next).float()
            miss = (keep * y + turn * v - x).flatten(1).norm(dim=1)
            # A sound far from what the model knows can make the iteration diverge: each item stops at its
            # best point as soon as a step lands further away than the one before.
            frozen |= (miss >= best_miss).view(-1, 1, 1)
            best = torch.where(frozen, best, y)
            best_miss = torch.minimum(miss, best_miss)
            if up[i + 1] < 1.0:  # iterate on the noise estimate: converges on trained networks
                eps = s_next * y + a_next * v
                y = a_next * (x - s * eps) / a + s_next * eps
            else:  # that map is the identity at t = 1: solve for the start directly
                y = (x - turn * v) / keep
            y = torch.where(frozen, best, y)
        x = y
        if progress:
            progress(i + 1, len(up) - 1)
    return x


def slerp(a: torch.Tensor, b: torch.Tensor, position: float) -> torch.Tensor:
    """Spherical interpolation per item: noises keep their length (a straight line between two noises passes
    through quieter ones, which the model turns into dull sounds)."""
    flat_a, flat_b = a.flatten(1), b.flatten(1)
    cos = (flat_a * flat_b).sum(1) / (flat_a.norm(dim=1) * flat_b.norm(dim=1)).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0)).view(-1, *[1] * (a.dim() - 1))
    so = torch.sin(omega)
    near = so.abs() < 1e-6  # nearly the same direction: a straight line is the same thing
    wa = torch.where(near, 1 - position, torch.sin((1 - position) * omega) / so.where(~near, 1.0))
    wb = torch.where(near, position, torch.sin(position * omega) / so.where(~near, 1.0))
    return wa * a + wb * b


def nudged(base: torch.Tensor, fresh: torch.Tensor, amount: float | torch.Tensor) -> torch.Tensor:
    """`base` noise turned by an angle of amount * 90 degrees towards `fresh` (0 keeps it, 1 is `fresh`);
    `amount` may be one per item."""
    angle = torch.as_tensor(amount, dtype=base.dtype).reshape(-1, *[1] * (base.dim() - 1)) * math.pi / 2
    return torch.cos(angle) * base + torch.sin(angle) * fresh


def keep_region(net: Net, known: torch.Tensor, mask: torch.Tensor) -> Net:
    """The network with its clean-sound estimate forced to `known` where `mask` is 1 (repaint).

    Every sampler here lands on its last clean-sound estimate, so the kept part comes out as `known` within
    float rounding, and the model hears it at each step and makes the rest fit it. v = (a * x - x0) / s is the
    velocity whose estimate is x0.
    """
    def masked(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = net(x, t).float()
        a, s = alpha_sigma(float(t[0]))
        v_known = (a * x - known) / max(s, 1e-12)
        return mask * v_known + (1 - mask) * v

    return masked
