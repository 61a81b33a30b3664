"""`tad-daemon morph`, `tweak`, `repaint`, `kit` and `encode`: new sounds from sounds, from a terminal."""

from __future__ import annotations

import click

from tad_daemon.cli.common import Failure
from tad_daemon.cli.generate import (
    blend_option,
    hit_options,
    make,
    prepare,
    read_sound,
    sound_options,
    tune_option,
    velocity_option,
    where_options,
    write_all,
    writing,
)
from tad_daemon.kinds import kit_default
from tad_daemon.limits import LAYERS, MAX_LAYERS, MAX_SEED, MAX_STEPS, MAX_TAKES
from tad_daemon.seeds import parse_turns

ENCODE_STEPS_HELP = "Steps of the encoding and decoding (default 30: more is slower and closer)."


@click.command()
@click.argument("model")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--position", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="0 gives back A, 1 gives back B (within the round trip's error).")
@click.option("-n", "--count", type=click.IntRange(1, 64), default=1, show_default=True,
              help="With N > 1: N sounds evenly between A and B, the ends left out (--position is not used).")
@click.option("--steps", type=click.IntRange(1, MAX_STEPS), help=ENCODE_STEPS_HELP)
@where_options
def morph(model, a, b, position, count, steps, out, post, device, config_file):
    """Sounds between the sounds in files A and B, made by MODEL.

    Both are encoded into MODEL's noise, the noises blended and decoded. The first morph of two files takes a
    few seconds per file on a CPU; further positions between the same two only decode.

    \b
      tad-daemon morph kick kick_a.wav kick_b.wav --position 0.3
      tad-daemon morph snare a.wav b.wav -n 5
    """
    sources = read_sound(a), read_sound(b)
    ws, engine = prepare(config_file, device, out, post, model)
    names = (click.format_filename(a), click.format_filename(b))
    shots = make(f"{model} morph x{count}", lambda p: engine.morph(model, *sources, position, count, steps, names,
                                                                   progress=p))
    write_all(ws, shots)


def _check_turns(ctx, param, value):
    try:
        return parse_turns(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command()
@click.argument("model")
@click.option("--amount", type=click.FloatRange(0.0, 1.0), required=True,
              help="How far from the seed's own sound: 0 is the same sound, 0.1 a close relative, 1 another sound.")
@click.option("--turns", metavar="SEED:AMOUNT,...", callback=_check_turns,
              help="Relatives of a relative: the `turns` its file or reply gives (`tad-daemon info FILE`), "
                   "with its --seed.")
@sound_options
@tune_option
@hit_options
def tweak(model, amount, turns, count, seed, steps, schedule, sampler, out, post, device, config_file, tune, velocity,
          blend):
    """Close relatives of the sound MODEL makes from a seed (--seed, required): "more like this".

    `tad-daemon info FILE` shows a generated file's seed, and a relative's turns: give both for
    relatives of that relative.

    \b
      tad-daemon tweak kick --seed 1234 --amount 0.1 -n 8
      tad-daemon tweak kick --seed 1234 --turns 1236:0.1 --amount 0.1 -n 8
    """
    if seed is None:
        raise Failure("tweak needs --seed: the seed of the sound to start from (`tad-daemon info FILE` shows it)", 2)
    ws, engine = prepare(config_file, device, out, post, model)
    shots = make(f"{model} tweak x{count}", lambda p: engine.tweak(model, seed, amount, count, steps, sampler,
                                                                   schedule, progress=p, velocity=velocity,
                                                                   blend=blend, turns=turns))
    write_all(ws, shots, tune)


@click.command()
@click.argument("model")
@click.argument("file", type=click.Path())
@click.argument("start", type=click.FloatRange(0.0))
@click.argument("end", type=click.FloatRange(0.0))
@click.option("--strength", type=click.FloatRange(0.0, 1.0, min_open=True), default=1.0, show_default=True,
              help="1 remakes the region from scratch; lower keeps some of what was there.")
@sound_options
def repaint(model, file, start, end, strength, count, seed, steps, schedule, sampler, out, post, device,
            config_file):
    """Remake the sound in FILE between START and END seconds with MODEL, keeping the rest.

    With --no-post the kept part is the source sample for sample; post-processing works on the whole sound.

    \b
      tad-daemon repaint snare snare.wav 0.05 0.74   # keep the attack, a new body and tail
      tad-daemon repaint kick kick.wav 0 0.02 -n 4   # keep the body, new transients
    """
    source = read_sound(file)
    ws, engine = prepare(config_file, device, out, post, model)
    shots = make(f"{model} repaint x{count}", lambda p: engine.repaint(
        model, source, start, end, strength, count, seed, steps, sampler, schedule,
        source_name=click.format_filename(file), progress=p))
    write_all(ws, shots)


@click.command()
@click.argument("models", nargs=-1)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), help="Make the same kit again.")
@click.option("--steps", type=click.IntRange(1, MAX_STEPS), help="Denoising steps (default: each model's own).")
@tune_option
@velocity_option
@where_options
def kit(models, seed, steps, tune, velocity, out, post, device, config_file):
    """One one-shot from each of MODELS, loudness matched, in one folder (default: what a beat needs among the
    installed models: kick, snare, closed and open hat, clap, tom; with the bundled ones kick, snare, hat, perc).

    \b
      tad-daemon kit
      tad-daemon kit kick snare hat clap --seed 7 --tune F1
    """
    if not models:
        from tad_daemon.cli.common import load
        from tad_daemon.models.registry import model_folders, scan

        cfg = load(config_file)
        models = kit_default(scan(model_folders(cfg.path("paths.models"), cfg["models.bundled"]))[0])
    ws, engine = prepare(config_file, device, out, post, *models)
    shots = make(f"kit of {len(models)}", lambda p: engine.kit(models, seed, steps, progress=p, velocity=velocity))
    write_all(ws, shots, tune, together=True)


@click.command()
@click.argument("model")
@click.option("--velocities", type=click.IntRange(1, MAX_LAYERS), default=LAYERS, show_default=True,
              help="Velocity layers, soft to hard (layer i of N made at velocity i/N).")
@click.option("--round-robins", type=click.IntRange(1, MAX_TAKES), default=1, show_default=True,
              help="Takes of each layer: the seed's own sound, then close relatives.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), help="Make the same set again.")
@click.option("--steps", type=click.IntRange(1, MAX_STEPS), help="Denoising steps (default: the model's own).")
@blend_option
@tune_option
@where_options
def layers(model, velocities, round_robins, seed, steps, blend, tune, out, post, device, config_file):
    """One drum as a sampler instrument: velocity layers of MODEL, each with round-robin takes, in one folder.

    Files are named for mapping in a sampler: MODEL_v<velocity 1-127>_rr<take>.wav, the velocity the top of
    the layer's range. Levels follow velocity as real drums' layers do (40 log10(velocity) dB); with a model
    of several kinds soft hits are also darker and shorter where its real drums were.

    \b
      tad-daemon layers snare
      tad-daemon layers kick --velocities 8 --round-robins 3 --seed 7
    """
    ws, engine = prepare(config_file, device, out, post, model)
    shots = make(f"{model} layers {velocities}x{round_robins}", lambda p: engine.layers(
        model, velocities, round_robins, seed, steps, blend=blend, progress=p))
    write_all(ws, shots, tune, together=True)


@click.command()
@click.argument("model")
@click.argument("file", type=click.Path())
@click.option("--steps", type=click.IntRange(1, MAX_STEPS), help=ENCODE_STEPS_HELP)
@where_options
def encode(model, file, steps, out, post, device, config_file):
    """Find the noise MODEL turns into the sound in FILE, and say how close it comes back.

    Writes the decoded sound and the noise (a .safetensors file beside it), and prints the round trip's error
    (how much of FILE the model can make: -30 dB and below is close). Morph is built on this.
    """
    import numpy as np
    from safetensors.numpy import save_file

    from tad_daemon.engine import ENCODE_STEPS, model_level_gain
    from tad_daemon.oneshot import OneShot

    source = read_sound(file)
    ws, engine = prepare(config_file, device, out, post, model)
    noise = make(f"{model} encode", lambda p: engine.encode(model, source[None], steps, p))
    decoded = make(f"{model} decode", lambda p: engine.decode(model, noise, steps, p))[0]
    level = source * model_level_gain(source, engine.get(model).entry.config.sample_rate)  # what was encoded
    error_db = 20 * np.log10(np.sqrt(((decoded - level) ** 2).mean() / max(float((level**2).mean()), 1e-20)))
    shot = OneShot(decoded, model, 0, "vsampler", "logsnr", steps or ENCODE_STEPS, engine.get(model).entry.config
                   .sample_rate, made="encode", source=click.format_filename(file))
    with writing(ws):
        path = ws.save(shot)
        noise_path = path.with_suffix(".noise.safetensors")
        save_file({"noise": noise[0]}, str(noise_path),
                  metadata={"model": model, "source": shot.source, "round_trip_db": f"{error_db:.1f}"})
    click.echo(path)
    click.echo(noise_path)
    click.echo(f"round trip: {error_db:.1f} dB (the decoded sound against {click.format_filename(file)})", err=True)


COMMANDS = [morph, tweak, repaint, kit, layers, encode]
