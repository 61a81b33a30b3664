"""`tad-daemon evaluate`: a model's quality report."""

from __future__ import annotations

import click

from tad_daemon.cli.common import Failure, config_option, load, run_with_progress
from tad_daemon.cli.generate import SCHEDULE_HELP
from tad_daemon.limits import MAX_SEED, MAX_STEPS, SAMPLERS, SCHEDULES


@click.command()
@click.argument("model")
@click.option("-n", "--count", type=click.IntRange(2, 512), default=16, show_default=True,
              help="How many one-shots to judge.")
@click.option("--steps", type=click.IntRange(1, MAX_STEPS), help="Denoising steps (default: the model's own).")
@click.option("--sampler", type=click.Choice(SAMPLERS), help="Default: the model's own.")
@click.option("--schedule", type=click.Choice(SCHEDULES), help=SCHEDULE_HELP)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for the report's JSON and PNG (default: <data folder>/reports).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--device", help="auto, cpu, cuda, mps (default: from the configuration).")
@config_option
def evaluate(model, count, steps, sampler, schedule, seed, out, as_json, device, config_file):
    """Judge MODEL against real drums it never learned from: generate N one-shots and report,
    each figure beside the same figure of held-out real kits,

    \b
      called CLASS       the share a classifier trained on real drums only gives the class;
      tail level         of the last 40 %, dB re peak (a hiss floor that never decays);
      energy > 8 kHz     dB re all energy (hiss);
      decay              ms until 30 dB below the peak;
      diversity          how different the one-shots are, as a share of the real kits';
      Frechet distance   to the real drums, as a multiple of kit-to-kit (1.0x: as close
                         as another real kit);
      defects            clicks, clipped, silent or DC-offset raw outputs;
    and a PNG of the one-shots beside real ones, to look at before listening.
    """
    cfg = load(config_file, **{"device.device": device})
    from tad_daemon.models.registry import why_unknown
    from tad_daemon.quality.evaluate import evaluate_model
    from tad_daemon.workspace import Workspace

    ws = Workspace(cfg)
    entries, problems = ws.scan()
    if model not in entries:
        raise Failure(why_unknown(model, entries, problems), 2)
    engine = ws.make_engine()
    engine.load(entries[model])
    folder = out or cfg.path("paths.data") / "reports"
    try:
        report = run_with_progress(f"{model} x{count}", lambda p: evaluate_model(
            engine, model, count, steps, sampler, seed, ws.post, folder, p, schedule=schedule))
    except OSError as e:
        raise Failure(f"cannot write the report: {e}") from None
    click.echo(report.to_json() if as_json else "\n".join(report.lines()))


COMMANDS = [evaluate]
