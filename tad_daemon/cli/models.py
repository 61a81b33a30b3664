"""`tad-daemon models`: the models this machine has, and changing them (pull, import, remove, rename, show)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import click

from tad_daemon.cli.common import Failure, config_option, load
from tad_daemon.kinds import MODEL_KINDS
from tad_daemon.names import NameError_, check_name

PUBLISHED_KEYS = ("kicks", "snares", "hihats", "percussion")  # tad_daemon.models.upstream.PUBLISHED, without torch


@click.group(invoke_without_command=True)
@config_option
@click.pass_context
def models(ctx, config_file):
    """List the installed models (bundled defaults and the models folder).

    The subcommands change the models folder; a running daemon follows on its own.
    """
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file
    if ctx.invoked_subcommand is not None:
        return
    from tad_daemon.models.registry import model_folders, scan

    cfg = load(config_file)
    entries, problems = scan(model_folders(cfg.path("paths.models"), cfg["models.bundled"]))
    if not entries:
        click.echo(f"no models installed (models folder: {cfg.path('paths.models')})")
    rows = [("NAME", "KIND", "PRESET", "SIZE", "SOURCE", "LICENSE", "FILE")]
    for name, e in sorted(entries.items()):
        c = e.config
        rows.append((name, e.kind, c.preset or "custom", f"{e.size_bytes / 1e6:.1f} MB", c.source, c.license,
                     str(e.path)))
    if entries:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
    for p in problems:
        click.echo(f"warning: {p}", err=True)


def _models_dir(ctx) -> Path:
    return load(ctx.obj.get("config_file")).path("paths.models")


def _clear(e: Exception) -> Failure:
    """The error as a message for the user: 2 for bad input (names, files), 1 for what may pass (network, disk)."""
    from tad_daemon.models.hub import DownloadError
    from tad_daemon.models.manage import ModelsError
    from tad_daemon.models.safe_load import CheckpointError

    if isinstance(e, (ModelsError, CheckpointError)):
        return Failure(str(e), 2)
    if isinstance(e, DownloadError):
        return Failure(str(e), 1)
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return Failure(f"disk full{f' writing {e.filename}' if e.filename else ''}: free some space and run "
                       "the command again (nothing was installed)", 1)
    if isinstance(e, OSError):
        return Failure(f"{e.strerror or e}{f': {e.filename}' if e.filename else ''}", 1)
    raise e


def _installed(path: Path) -> str:
    from tad_daemon.models.registry import read_entry

    e = read_entry(path)
    return (f"installed {e.name}: {e.kind}, {e.config.preset}, {e.size_bytes / 1e6:.1f} MB, "
            f"licence {e.config.license}\n  {path}")


def _source(path: Path) -> str | None:
    from tad_daemon.models.modelfile import read_config

    try:
        return read_config(path).source
    except Exception:  # unreadable: certainly not the seed's model
        return None


@models.command()
@click.argument("which", type=click.Choice([*PUBLISHED_KEYS, "all"]))
@click.option("--force", is_flag=True, help="Download and convert again, replacing the installed model.")
@click.option("--revision", default="main", show_default=True, help="Branch, tag or commit of the repositories.")
@click.pass_context
def pull(ctx, which, force, revision):
    """Download the seed's models from Hugging Face and install them.

    kicks, snares, hihats, percussion (or all) become kick-seed, snare-seed, hat-seed and perc-seed. Each
    download is about 500 MB; the EMA weights are kept (about 130 MB each). HF_ENDPOINT selects a mirror,
    HF_HOME where downloads are cached.
    """
    from tad_daemon.models import hub, manage, upstream

    models_dir = _models_dir(ctx)
    wanted = list(upstream.PUBLISHED.values()) if which == "all" else [upstream.PUBLISHED[which]]
    for m in wanted:
        try:
            dest = manage.new_model_path(models_dir, m.name, force=True)
            if dest.exists() and not force:
                if _source(dest) != m.source:
                    raise manage.ModelsError(f"a model called '{m.name}' already exists ({dest}) and is not the "
                                             f"seed's; rename it first, or use --force to replace it")
                click.echo(f"{m.name} is already installed (--force downloads it again)")
                continue
            click.echo(f"downloading {m.repo} {m.filename} (about 500 MB)", err=True)
            path, sha256 = hub.fetch(m.repo, m.filename, revision)
            click.echo(f"converting {path.name} (EMA weights)", err=True)
            description = (f"The seed's {m.kind} model (Tiny Audio Diffusion), EMA weights converted from "
                           f"{m.repo} {m.filename}. {upstream.LICENSE_NOTE}")
            out = upstream.import_checkpoint(path, dest, kind=m.kind, source=m.source, license=upstream.LICENSE,
                                         description=description, sha256=sha256)
        except Exception as e:
            raise _clear(e) from None
        click.echo(_installed(out))
        click.echo(f"  download kept in the Hugging Face cache: {path} (delete it to free the space)")
    click.echo(f"licence: {upstream.LICENSE_NOTE}")


@models.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Model name (default: kick-seed etc. for the seed's files, else the file's name).")
@click.option("--kind", type=click.Choice(MODEL_KINDS), help="Drum class (default: the seed file's, else custom).")
@click.option("--license", "license_", help="Licence of the model (default: the seed's for its files).")
@click.option("--force", is_flag=True, help="Replace a model of the same name.")
@click.pass_context
def import_(ctx, file, name, kind, license_, force):
    """Install a Tiny Audio Diffusion checkpoint (.ckpt) from a local file.

    Only the EMA U-Net weights are kept; nothing in the file is executed. The seed's own files
    (kicks_v7.ckpt, ...) are recognised by name and get the seed's class and licence.
    """
    from tad_daemon.models import manage, upstream

    known = upstream.by_filename(file.name)
    if not name and not known:
        try:
            check_name(file.stem)
        except NameError_ as e:
            raise Failure(f"{e}; choose a name with --name", 2) from None
    name = name or (known.name if known else file.stem)
    kind = kind or (known.kind if known else "custom")
    license_ = license_ or (upstream.LICENSE if known else "unspecified")
    source = f"imported: {file.name}" + (f" (local file; published as {known.repo})" if known else " (local file)")
    description = f"EMA weights converted from {file.name}." + (f" {upstream.LICENSE_NOTE}" if known else "")
    try:
        dest = manage.new_model_path(_models_dir(ctx), name, force=force)
        out = upstream.import_checkpoint(file, dest, kind=kind, source=source, license=license_,
                                         description=description)
    except Exception as e:
        raise _clear(e) from None
    click.echo(_installed(out))
    if known:
        click.echo(f"licence: {upstream.LICENSE_NOTE}")


@models.command()
@click.argument("name")
@click.pass_context
def remove(ctx, name):
    """Delete a model from the models folder (bundled models stay)."""
    from tad_daemon.models import manage

    try:
        path = manage.remove(_models_dir(ctx), name)
    except Exception as e:
        raise _clear(e) from None
    click.echo(f"removed {name} ({path})")


@models.command()
@click.argument("old")
@click.argument("new")
@click.option("--force", is_flag=True, help="Replace a model already called NEW.")
@click.pass_context
def rename(ctx, old, new, force):
    """Rename a model in the models folder."""
    from tad_daemon.models import manage

    try:
        path = manage.rename(_models_dir(ctx), old, new, force=force)
    except Exception as e:
        raise _clear(e) from None
    click.echo(f"renamed {old} to {new} ({path})")


@models.command()
@click.argument("name")
@click.pass_context
def show(ctx, name):
    """Print a model's full description as JSON: file, size, config (preset, class, licence, source,
    training), and its model card if it has one."""
    from tad_daemon.models import manage

    try:
        info = manage.describe(_models_dir(ctx), name)
    except Exception as e:
        raise _clear(e) from None
    click.echo(json.dumps(info, indent=2, sort_keys=True))


COMMANDS = [models]
