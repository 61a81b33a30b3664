"""`tad-daemon models`: the models this machine has."""

from __future__ import annotations

import click

from tad_daemon.cli.common import config_option, load


@click.group(invoke_without_command=True)
@config_option
@click.pass_context
def models(ctx, config_file):
    """List the installed models (bundled defaults and the models folder)."""
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file
    if ctx.invoked_subcommand is not None:
        return
    from tad_daemon.models.registry import model_folders, scan

    cfg = load(config_file)
    entries, problems = scan(model_folders(cfg.path("paths.models")))
    if not entries:
        click.echo(f"no models installed (models folder: {cfg.path('paths.models')})")
    rows = [("NAME", "CLASS", "PRESET", "SIZE", "SOURCE", "LICENSE", "FILE")]
    for name, e in sorted(entries.items()):
        c = e.config
        rows.append((name, c.kind, c.preset or "custom", f"{e.size_bytes / 1e6:.1f} MB", c.source, c.license,
                     str(e.path)))
    if entries:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
    for p in problems:
        click.echo(f"warning: {p}", err=True)


COMMANDS = [models]
