"""The `tad-daemon` command. Each command group lives in its own module; torch is imported only inside
the commands that need it, so `tad-daemon send` starts fast."""

from __future__ import annotations

import click

from tad_daemon import __version__
from tad_daemon.cli import daemon, evaluate, generate, models, training, transform


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tad-daemon")
def main() -> None:
    """Drum one-shots by waveform diffusion, on your own machine.

    Make sounds from a terminal (`generate`, `vary`, `tweak`, `morph`, `repaint`, `kit`), or run the daemon
    (`serve`) that your DAW talks to.
    """


for module in (generate, transform, models, daemon, evaluate, training):
    for command in module.COMMANDS:
        main.add_command(command)
