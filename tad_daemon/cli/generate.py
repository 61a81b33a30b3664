"""`tad-daemon generate`, `vary` and `info`: make sounds from a terminal, no DAW or daemon needed."""

from __future__ import annotations

from contextlib import contextmanager

import click

from tad_daemon.cli.common import Failure, config_option, load, run_with_progress
from tad_daemon.limits import MAX_SEED, MAX_STEPS, SAMPLERS, SCHEDULES

SCHEDULE_HELP = ("Time steps: karras (dense near the clean end), logsnr, linear or quadratic (a distilled "
                 "student's; default: the model's own with its own sampler, else the sampler's).")


def sound_options(f):
    f = click.option("--sampler", type=click.Choice(SAMPLERS),
                     help="dpmpp-2m (good sounds in ~12 steps), dpmpp-2m-sde (stochastic, ~20 steps) or "
                          "vsampler (the original, needs ~50); default: the model's own.")(f)
    f = click.option("--schedule", type=click.Choice(SCHEDULES), help=SCHEDULE_HELP)(f)
    f = click.option("--steps", type=click.IntRange(1, MAX_STEPS),
                     help="Denoising steps: more is slower and cleaner (default: the model's own).")(f)
    f = click.option("--seed", type=click.IntRange(0, MAX_SEED),
                     help="Start from this seed to make a sound again (file i of a batch uses seed + i).")(f)
    f = click.option("-n", "--count", type=click.IntRange(1, 1024), default=1, show_default=True,
                     help="How many one-shots.")(f)
    return where_options(f)


def where_options(f):
    """Where to write, the clean-up, the device and the configuration: every command that makes sounds."""
    f = click.option("--out", type=click.Path(file_okay=False),
                     help="Write into this folder (default: the sample folder, one subfolder per model).")(f)
    f = click.option("--post/--no-post", default=True, show_default=True,
                     help="Clean-up after generation (DC removal, tail gate, peak normalise).")(f)
    f = click.option("--device", help="auto, cpu, cuda, mps (default: from the configuration).")(f)
    return config_option(f)


def hit_options(f):
    """How hard the hit, and (a model of several kinds) which kinds are mixed in."""
    return blend_option(velocity_option(f))


def velocity_option(f):
    return click.option("--vel", "velocity", type=click.FloatRange(0.01, 1.0),
                        help="How hard the hit, 0.01-1 (default 1, a full hit): softer is quieter, and with a "
                             "model of several kinds darker and shorter as real soft hits are.")(f)


def blend_option(f):
    return click.option("--blend", metavar="KIND:WEIGHT[,...]", callback=_check_blend,
                        help="Mix other kinds in by weight, e.g. tom:0.3 (a model of several kinds).")(f)


def _check_blend(ctx, param, value):
    from tad_daemon.kinds import parse_blend

    try:
        return parse_blend(value) if value is not None else None
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def tune_option(f):
    return click.option("--tune", metavar="NOTE", callback=_check_note,
                        help="Tune each one-shot's fundamental to NOTE (e.g. A1, C#2) by resampling; sounds with "
                             "no clear pitch are left as they are. The file's metadata says what was done.")(f)


def _check_note(ctx, param, value):
    from tad_daemon.audio.tune import check_note

    try:
        return check_note(value) if value is not None else None
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def prepare(config_file, device, out, post, *model_names: str):
    """Configuration, workspace and engine with the models loaded; clear errors for the usual mistakes."""
    cfg = load(config_file, **{"device.device": device})
    from tad_daemon.models.registry import why_unknown
    from tad_daemon.workspace import Workspace, post_settings

    ws = Workspace(cfg, post_settings(cfg, post), out)
    entries, problems = ws.scan()
    for name in model_names:
        if name not in entries:
            if entries:
                raise Failure(why_unknown(name, entries, problems), 2)
            hint = f" ({'; '.join(problems)})" if problems else ""
            raise Failure(f"no models installed: put a model file in {ws.models_dir}{hint}", 2)
    engine = ws.make_engine()
    _show_export_notice()
    for name in dict.fromkeys(model_names):
        try:
            # Waits for the ONNX Runtime net: exported once per model file (a one-time wait), then cached.
            engine.load(entries[name], wait=True)
        except (RuntimeError, ValueError) as e:
            raise Failure(f"cannot load model {name!r}: {e}") from None
    return ws, engine


def read_sound(file: str):
    """A sound file as the models take it, or a clear error (exit 2)."""
    from tad_daemon.audio.load import AudioError, load_oneshot

    try:
        return load_oneshot(file)
    except AudioError as e:
        raise Failure(str(e), 2) from None


def make(label: str, job):
    """`job(progress)` under a progress bar; a bad setting is a usage error (exit 2)."""
    try:
        return run_with_progress(label, job)
    except ValueError as e:
        raise Failure(str(e), 2) from None


def _show_export_notice() -> None:
    """Show the ONNX backend's messages (the one-time export, a fallback to torch) on stderr."""
    import logging

    handler = logging.StreamHandler(click.get_text_stream("stderr"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tad_daemon.models.onnxrt")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def write_all(ws, shots, tune: str | None = None, together: bool = False) -> None:
    """Finish (tuned to `tune`; `together`: a set brought to one loudness) and write each, printing its path."""
    from tad_daemon.audio.tune import describe, tune_shot

    shots = [tune_shot(shot, tune) for shot in shots]
    with writing(ws):
        for shot, processed in zip(shots, ws.finish(shots, together=together)):
            click.echo(ws.save(shot, processed=processed))
            if shot.tuning:
                click.echo(f"  tuned: {describe(shot.tuning)}", err=True)


@contextmanager
def writing(ws):
    """Writing into the sample folder: a refused output or a file error is a clear failure, and the folder's
    temporary folder goes either way."""
    from tad_daemon.workspace import BadOutput

    try:
        yield
    except BadOutput as e:
        raise Failure(str(e)) from None
    except OSError as e:
        raise Failure(f"cannot write to the sample folder: {e}") from None
    finally:
        ws.close()


@click.command()
@click.argument("model")
@sound_options
@tune_option
@hit_options
def generate(model, count, seed, steps, schedule, sampler, out, post, device, config_file, tune, velocity, blend):
    """Make new one-shots with MODEL (e.g. kick, snare, clap, open-hat: `tad-daemon models` lists them).

    Prints the path of each new WAV file.

    \b
      tad-daemon generate snare -n 16
      tad-daemon generate kick --seed 1234 --out ./kicks
      tad-daemon generate kick --blend tom:0.3 --vel 0.6
    """
    ws, engine = prepare(config_file, device, out, post, model)
    shots = make(f"{model} x{count}", lambda p: engine.generate(model, count, seed, steps, sampler, schedule,
                                                                 progress=p, velocity=velocity, blend=blend))
    write_all(ws, shots, tune)


@click.command()
@click.argument("model")
@click.argument("file", type=click.Path())
@click.option("--strength", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="How far to move from FILE: 0 keeps it, 1 ignores it.")
@sound_options
@tune_option
@hit_options
def vary(model, file, strength, count, seed, steps, schedule, sampler, out, post, device, config_file, tune, velocity,
         blend):
    """Make variations of the sound in FILE with MODEL.

    FILE may be any sound file (WAV, AIFF, FLAC, OGG...), any rate or channels; the first 0.74 s are used.

    \b
      tad-daemon vary snare my_snare.wav --strength 0.3 -n 4
    """
    source = read_sound(file)
    ws, engine = prepare(config_file, device, out, post, model)
    shots = make(f"{model} variation x{count}", lambda p: engine.vary(
        model, source, strength, count, seed, steps, sampler, schedule, source_name=click.format_filename(file),
        progress=p, velocity=velocity, blend=blend))
    write_all(ws, shots, tune)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def info(file):
    """Show how a generated FILE was made (model, seed, sampler, steps...)."""
    from tad_daemon.audio.wav import read_metadata

    try:
        meta = read_metadata(file)
    except Exception as e:
        raise Failure(f"{file}: not a readable sound file ({e})", 2) from None
    if not meta:
        raise Failure(f"{file}: no tad-daemon metadata in this file", 1)
    for key in sorted(meta):
        click.echo(f"{key}: {meta[key]}")


COMMANDS = [generate, vary, info]
