"""Options and helpers shared by commands (no torch here)."""

from __future__ import annotations

import click

from tad_daemon.config import Config, ConfigError, load_config


def config_option(f):
    return click.option("--config", "config_file", type=click.Path(dir_okay=False),
                        help="Configuration file (default: the platform's config folder).")(f)


def load(config_file: str | None, **overrides) -> Config:
    try:
        return load_config(config_file, overrides)
    except ConfigError as e:
        raise click.ClickException(f"configuration: {e}") from None


class Failure(click.ClickException):
    """A clear message and a non-zero exit code (1 by default; 2 for bad input)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def error(message: str) -> None:
    """An error on stderr, in click's style (what a Failure prints): one style for every command."""
    click.echo(f"Error: {message}", err=True)


def run_with_progress(label: str, job):
    """Run `job(progress)` under a progress bar on stderr; `progress(done, total)` moves the bar."""
    with click.progressbar(length=1000, label=label, file=click.get_text_stream("stderr"), show_eta=True) as bar:
        last = [0]

        def progress(done: int, total: int) -> None:
            pos = int(1000 * done / max(total, 1))
            bar.update(pos - last[0])
            last[0] = pos

        return job(progress)
