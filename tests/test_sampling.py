"""Samplers: parity with the seed's VSampler, DPM-Solver++ convergence, SDEdit variation, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tad_daemon import sampling
from tad_daemon.engine import Engine, model_level_gain
from tad_daemon.models.adp import VSampler
from tad_daemon.models.network import build_unet
from tad_daemon.models.registry import read_entry
from tests.conftest import TINY_ARCH, make_model


def gaussian_net(mu: torch.Tensor, c: torch.Tensor):
    """The exact v-prediction for data ~ N(mu, c^2): its probability-flow ODE maps noise e at t=1 to mu + c*e."""

    def net(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = torch.cos(t * math.pi / 2).view(-1, 1, 1).double()
        s = torch.sin(t * math.pi / 2).view(-1, 1, 1).double()
        x = x.double()
        x0 = mu + (a * c**2 / (a**2 * c**2 + s**2)) * (x - a * mu)
        return ((a * x - x0) / s).float()

    return net


def test_vsampler_matches_audio_diffusion_pytorch():
    torch.manual_seed(1)
    net = build_unet(TINY_ARCH).eval()
    noise = torch.randn(2, 2, 1024)
    with torch.no_grad():
        theirs = VSampler(net)(noise, num_steps=10)
        ours = sampling.sample_vsampler(net, noise, sampling.linear_times(10))
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("schedule", sampling.SCHEDULES)
def test_dpmpp_2m_converges_to_the_exact_solution_as_steps_grow(schedule):
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(1, 2, 256, generator=g).double() * 0.3
    c = torch.rand(1, 2, 256, generator=g).double() * 0.5 + 0.05
    net = gaussian_net(mu, c)
    e = torch.randn(3, 2, 256, generator=g)
    exact = (mu + c * e.double()).float()
    scale = exact.abs().mean().item()

    def error(sampler, steps: int) -> float:
        out = sampling.run(sampler, net, e.clone(), sampling.times_for(schedule, steps))
        return (out - exact).abs().mean().item()

    assert error("dpmpp-2m", 64) < error("dpmpp-2m", 16) < error("dpmpp-2m", 4)
    assert error("dpmpp-2m", 64) < 0.01 * scale
    # Second order: far closer than the first-order VSampler at the same number of steps.
    assert error("dpmpp-2m", 32) < 0.5 * error("vsampler", 32)


def test_dpmpp_2m_sde_without_noise_is_dpmpp_2m():
    g = torch.Generator().manual_seed(1)
    net = gaussian_net(torch.randn(1, 2, 64, generator=g).double() * 0.3, torch.full((1, 2, 64), 0.2).double())
    x = torch.randn(2, 2, 64, generator=g)
    times = sampling.karras_times(10)
    no_noise = sampling.sample_dpmpp_2m_sde(net, x.clone(), times, lambda: torch.full_like(x, float("nan")), eta=0)
    torch.testing.assert_close(no_noise, sampling.sample_dpmpp_2m(net, x.clone(), times))


def test_dpmpp_2m_sde_samples_the_data_distribution():
    """With the exact network for data ~ N(mu, c^2), the stochastic sampler's outputs have mean mu and spread c:
    fresh noise of the wrong size at any step would show in the spread."""
    g = torch.Generator().manual_seed(3)
    mu = torch.linspace(-0.5, 0.5, 16).view(1, 1, 16).double()
    c = torch.linspace(0.05, 0.6, 16).view(1, 1, 16).double()
    x = torch.randn(4000, 1, 16, generator=g)
    out = sampling.sample_dpmpp_2m_sde(gaussian_net(mu, c), x, sampling.karras_times(100),
                                       lambda: torch.randn(x.shape, generator=g)).double()
    torch.testing.assert_close(out.mean(0, keepdim=True), mu, atol=0.06 * c.max().item(), rtol=0)
    torch.testing.assert_close(out.std(0, keepdim=True) / c, torch.ones_like(c), atol=0.04, rtol=0)
    # the outputs are not the probability-flow ODE's: the path forgot part of the starting noise
    ode = (mu + c * x.double()).float()
    assert (out.float() - ode).abs().mean() > 0.2 * c.mean()


def test_dpmpp_2m_matches_many_step_reference_on_a_network():
    torch.manual_seed(2)
    net = build_unet(TINY_ARCH).eval()
    x = torch.randn(1, 2, 1024)
    ref = sampling.sample_dpmpp_2m(net, x.clone(), sampling.karras_times(200))
    errs = [(sampling.sample_dpmpp_2m(net, x.clone(), sampling.karras_times(n)) - ref).abs().mean().item()
            for n in (5, 20, 80)]
    assert errs[0] > errs[1] > errs[2]


def test_every_sampler_and_schedule_the_command_line_offers_runs():
    from tad_daemon.cli import generate  # its lists come from the torch-free limits module

    x = torch.randn(1, 2, 64)
    for schedule in generate.SCHEDULES:
        times = sampling.times_for(schedule, 4)
        assert len(times) == 5 and times[0] == 1.0 and times[-1] == 0.0
        for sampler in generate.SAMPLERS:
            out = sampling.run(sampler, lambda x_t, t: torch.zeros_like(x_t), x, times)
            assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("schedule", sampling.SCHEDULES)
@pytest.mark.parametrize("t_start", [1.0, 0.5, 0.05])
def test_schedules_run_from_start_to_zero(schedule, t_start):
    for steps in (1, 2, 12):
        times = sampling.times_for(schedule, steps, t_start)
        assert len(times) == steps + 1
        assert times[0] == pytest.approx(t_start) and times[-1] == 0.0
        assert all(a > b for a, b in zip(times, times[1:]))


@pytest.fixture
def engine(tmp_path):
    path = make_model(tmp_path, "tiny", length=1024)
    eng = Engine("cpu", "fp32")
    eng.load(read_entry(path))
    return eng


def test_seeds_are_reproducible_and_batches_match_single_runs(engine):
    a = engine.generate("tiny", count=3, seed=42, steps=4)
    b = engine.generate("tiny", count=3, seed=42, steps=4)
    assert [s.seed for s in a] == [42, 43, 44]
    for x, y in zip(a, b):
        assert np.array_equal(x.audio, y.audio)
    single = engine.generate("tiny", count=1, seed=43, steps=4)[0]
    np.testing.assert_allclose(single.audio, a[1].audio, atol=1e-4)
    other = engine.generate("tiny", count=1, seed=7, steps=4)[0]
    assert not np.allclose(other.audio, a[0].audio)


def test_stochastic_sampler_is_reproducible_per_seed_in_any_batch(engine):
    a = engine.generate("tiny", count=3, seed=42, steps=6, sampler="dpmpp-2m-sde")
    assert [s.schedule for s in a] == ["karras"] * 3  # its own schedule
    again = engine.generate("tiny", count=3, seed=42, steps=6, sampler="dpmpp-2m-sde")
    for x, y in zip(a, again):
        assert np.array_equal(x.audio, y.audio)
    single = engine.generate("tiny", seeds=[43], steps=6, sampler="dpmpp-2m-sde")[0]
    np.testing.assert_allclose(single.audio, a[1].audio, atol=1e-4)
    engine.chunk = 1  # one chunk per one-shot: each still gets its own seed's noise
    chunked = engine.generate("tiny", count=3, seed=42, steps=6, sampler="dpmpp-2m-sde")
    for x, y in zip(a, chunked):
        np.testing.assert_allclose(x.audio, y.audio, atol=1e-4)
    ode = engine.generate("tiny", count=1, seed=42, steps=6, sampler="dpmpp-2m", schedule="karras")[0]
    assert not np.allclose(ode.audio, a[0].audio, atol=1e-3)  # the noise of the steps counts
    source = np.zeros((2, 1024), np.float32)
    full = engine.vary("tiny", source, 1.0, count=1, seed=43, steps=6, sampler="dpmpp-2m-sde")[0]
    np.testing.assert_allclose(full.audio, a[1].audio, atol=1e-4)  # a variation at strength 1 is a new sound
    # (a silent source: its level, which a variation comes out at, is the model's own)


def test_variation_strength_zero_returns_source_and_one_ignores_it(engine):
    rng = np.random.default_rng(0)
    source = (0.5 * rng.standard_normal((2, 1024))).astype(np.float32)
    same = engine.vary("tiny", source, 0.0, count=2, seed=5)
    for shot in same:
        np.testing.assert_allclose(shot.audio, source, atol=1e-6)
        assert shot.steps == 0
    full = engine.vary("tiny", source, 1.0, count=1, seed=5, steps=4)[0]
    fresh = engine.generate("tiny", count=1, seed=5, steps=4)[0]
    # A new sound, at the source's level: sources go into the model at the level it learned and come back out
    # at their own.
    np.testing.assert_allclose(full.audio * model_level_gain(source, 44100), fresh.audio, atol=1e-4)
    other_source = engine.vary("tiny", -source, 1.0, count=1, seed=5, steps=4)[0]
    np.testing.assert_allclose(other_source.audio, full.audio, atol=1e-4)
    half = engine.vary("tiny", source, 0.5, count=1, seed=5, steps=4)[0]
    assert half.steps == 2 and not np.allclose(half.audio, source, atol=1e-3)


def test_a_models_default_schedule_is_used_with_its_own_sampler_only(tmp_path):
    from tad_daemon.models.modelfile import read_config, read_weights, save_model

    plain = make_model(tmp_path, "plain", length=1024)
    config = read_config(plain)
    config.default_schedule = "karras"
    own = save_model(tmp_path / "own.safetensors", read_weights(plain), config)
    eng = Engine("cpu", "fp32")
    for path in (plain, own):
        eng.load(read_entry(path))
    karras = eng.generate("own", seed=3, steps=4)[0]
    assert karras.schedule == "karras"
    np.testing.assert_array_equal(karras.audio, eng.generate("plain", seed=3, steps=4, schedule="karras")[0].audio)
    assert eng.generate("plain", seed=3, steps=4)[0].schedule == "logsnr"
    assert not np.allclose(karras.audio, eng.generate("plain", seed=3, steps=4)[0].audio, atol=1e-4)
    assert eng.generate("own", seed=3, steps=4, schedule="logsnr")[0].schedule == "logsnr"  # asked: obeyed
    assert eng.generate("own", seed=3, steps=4, sampler="vsampler")[0].schedule == "linear"  # not its sampler


def test_engine_rejects_bad_requests(engine):
    with pytest.raises(KeyError, match="unknown model"):
        engine.generate("nope")
    with pytest.raises(ValueError, match="steps"):
        engine.generate("tiny", steps=0 or 5000)
    with pytest.raises(ValueError, match="sampler"):
        engine.generate("tiny", sampler="euler")
    with pytest.raises(ValueError, match="strength"):
        engine.vary("tiny", np.zeros((2, 1024), np.float32), float("nan"))
    with pytest.raises(ValueError, match="source"):
        engine.vary("tiny", np.zeros((2, 99), np.float32), 0.5)
    with pytest.raises(ValueError, match="seed"):
        engine.generate("tiny", seed=2**31)
