"""`tad-daemon serve`, `send`, `status`, `config` and `autostart`: run the daemon and talk to it.

Only `serve` imports torch (after it holds its port); the rest must start fast.
"""

from __future__ import annotations

import json
import sys

import click

from tad_daemon.cli.common import Failure, config_option, error, load
from tad_daemon.config import DEFAULTS, default_config_file


def set_option(f):
    return click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                        help="Override any setting (see `tad-daemon config`), e.g. --set pool.size=4. Repeatable.")(f)


def parse_settings(settings: tuple[str, ...]) -> dict:
    out = {}
    for s in settings:
        key, eq, value = s.partition("=")
        if not eq or key.strip() not in DEFAULTS:
            known = ", ".join(sorted(DEFAULTS))
            raise click.UsageError(f"--set {s!r}: expected KEY=VALUE with KEY one of: {known}")
        out[key.strip()] = value
    return out


def client_target(cfg, host: str | None, port: int | None) -> tuple[str, int]:
    """Where the running daemon listens; a daemon on every interface is reached on loopback."""
    host = host or cfg["server.host"]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return host, port or cfg["server.port"]


def client_options(f):
    f = click.option("--port", type=click.IntRange(1, 65535), help="The daemon's port (default: server.port).")(f)
    f = click.option("--host", help="The daemon's address (default: server.host).")(f)
    return config_option(f)


# -- serve ---------------------------------------------------------------------------------------------------
@click.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1; others need --allow-remote).")
@click.option("--port", type=click.IntRange(0, 65535), help="UDP port to listen on (default 9310).")
@click.option("--samples", type=click.Path(file_okay=False), help="Sample folder the new one-shots go to.")
@click.option("--models", type=click.Path(file_okay=False), help="Models folder (watched while running).")
@click.option("--pool", "pool_size", type=click.IntRange(0, 64), help="Ready one-shots kept per model (0: off).")
@click.option("--device", help="auto, cpu, cuda, cuda:1, mps (default: auto, the fastest there is).")
@click.option("--allow-remote", is_flag=True, default=None,
              help="Allow listening beyond loopback; only the addresses in server.allow may then send.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True)
@set_option
@config_option
def serve(host, port, samples, models, pool_size, device, allow_remote, log_level, settings, config_file):
    """Run the daemon: load the models and answer OSC requests (docs/osc.md) until stopped.

    \b
    Exit codes: 0 stopped by Ctrl-C / SIGTERM, 1 error, 2 bad configuration,
    3 the port is in use (tad-daemon is probably running already).

    \b
      tad-daemon serve
      tad-daemon serve --port 9400 --samples ~/Music/drums
      tad-daemon serve --host 0.0.0.0 --allow-remote --set server.allow=192.168.1.20
    """
    named = {"server.host": host, "server.port": port, "paths.samples": samples, "paths.models": models,
             "pool.size": pool_size, "device.device": device, "server.allow_remote": allow_remote}
    cfg = load(config_file, **{**parse_settings(settings), **{k: v for k, v in named.items() if v is not None}})
    from tad_daemon.daemon.server import AddressInUse, Server, check_listen

    problem = check_listen(cfg["server.host"], cfg["server.allow_remote"], cfg["server.allow"])
    if problem:
        raise Failure(problem, 2)
    try:
        server = Server(cfg["server.host"], cfg["server.port"], cfg["server.allow"])
    except AddressInUse as e:
        raise Failure(str(e), 3) from None
    except OSError as e:
        raise Failure(str(e), 1) from None
    from tad_daemon.daemon.app import serve as run  # torch from here on

    try:
        code = run(cfg, server, log_level)
    except OSError as e:
        raise Failure(str(e), 1) from None
    sys.exit(code)


# -- send ----------------------------------------------------------------------------------------------------
@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("address")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=60.0, show_default=True,
              help="Seconds to wait for each reply.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per reply: {\"address\": ..., \"args\": [...]}.")
@client_options
def send(address, args, timeout, as_json, host, port, config_file):
    """Send one OSC request to the running daemon; print its replies.

    ARGS are typed like oscsend: an integer if they read as one, else a number, else a string.
    Force a type with a prefix: i:4, f:1 (the number 1.0), s:123 (the string "123"). Relative paths
    are made absolute for the arguments that are paths. Put -- before ARGS that start with '-'
    and are not numbers.

    Prints each reply on one line: the address then the arguments, separated by a space (--json for paths
    with spaces).
    Waits for every result of the request (e.g. one /tad/done per file for /tad/generate).

    \b
    Exit codes: 0 every reply was /tad/done, 1 a /tad/fail, 2 bad usage,
    3 no reply (no daemon running, or --timeout passed).

    \b
      tad-daemon send /tad/ping
      tad-daemon send /tad/generate snare 4
      tad-daemon send /tad/vary kick ./my_kick.wav 0.3 2 tag=reaper
    """
    from tad_daemon.protocol.client import UsageError, absolute_paths, format_reply, parse_arg, request

    cfg = load(config_file)
    host, port = client_target(cfg, host, port)
    try:
        values = absolute_paths(address, [parse_arg(a) for a in args])

        def show(msg) -> None:
            click.echo(format_reply(msg, as_json))

        code = request(address, values, host, port, timeout, show, error)
    except UsageError as e:
        raise click.UsageError(str(e)) from None
    except OSError as e:
        raise Failure(f"cannot send to {host}:{port}: {e.strerror or e}") from None
    sys.exit(code)


# -- status --------------------------------------------------------------------------------------------------
@click.command()
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=5.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@client_options
def status(timeout, as_json, host, port, config_file):
    """Ask the running daemon how it is: device, models, queue, pool, training.

    Exit code 3 when no daemon answers.
    """
    from tad_daemon.protocol.client import OK, request
    from tad_daemon.protocol.table import read_reply

    cfg = load(config_file)
    host, port = client_target(cfg, host, port)
    replies = []
    errors = []
    for address in ("/tad/status", "/tad/models"):
        code = request(address, [], host, port, timeout, replies.append, errors.append)
        if code != OK:
            for e in errors:
                error(e)
            for r in replies:
                if r.address == "/tad/fail":
                    error(" ".join(map(str, r.args)))
            sys.exit(code)
    state = read_reply(replies[0].address, replies[0].args)
    del state["command"]
    models = [read_reply(r.address, r.args) for r in replies if r.address == "/tad/model"]
    state["model_names"] = [m["name"] for m in models]
    state["runs_on"] = {m["name"]: m["runs_on"] for m in models}
    state["address"] = f"{host}:{port}"
    if as_json:
        click.echo(json.dumps(state))
        return
    click.echo(f"tad-daemon {state['version']} on {host}:{port}")
    click.echo(f"  device:   {state['device']}")
    click.echo(f"  models:   {state['models']} ({', '.join(state['model_names']) or 'none'})")
    for name, runs_on in state["runs_on"].items():
        click.echo(f"    {name}: {runs_on}")
    click.echo(f"  queue:    {state['queue']} request(s)")
    click.echo(f"  pool:     {state['pool_ready']} ready one-shot(s)")
    running = state["running_job"]
    job = f"{running} ({state['job_progress']:.0%})" if running else "none running"
    click.echo(f"  training: {state['jobs_queued']} queued, {job}")


# -- config --------------------------------------------------------------------------------------------------
def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


@click.command("config")
@set_option
@config_option
def config_command(settings, config_file):
    """Print the effective configuration: every key, its value and where it came from.

    The output is valid TOML: copy lines into the configuration file to change them. Each key can also
    be set by a TAD_DAEMON_* variable (e.g. TAD_DAEMON_SERVER_PORT) or by `--set KEY=VALUE`.
    """
    cfg = load(config_file, **parse_settings(settings))
    path = click.format_filename(config_file or default_config_file())
    exists = (config_file is not None) or default_config_file().is_file()
    click.echo(f"# configuration file: {path}{'' if exists else ' (not present: defaults apply)'}")
    lines = [(f"{key} = {toml_value(cfg[key])}", cfg.sources[key]) for key in sorted(cfg.values)]
    width = max(len(text) for text, _ in lines)
    for text, source in lines:
        click.echo(f"{text.ljust(width)}  # {source}")


# -- autostart -----------------------------------------------------------------------------------------------
@click.group()
def autostart():
    """Start the daemon when you log in (systemd user unit, launchd agent, or Windows Startup folder)."""


def _entry(config_file):
    from tad_daemon.cli.autostart import default_entry

    try:
        return default_entry(config_file)
    except ValueError as e:
        raise Failure(str(e), 2) from None


def _run_all(commands: list[list[str]]) -> None:
    import shutil
    import subprocess

    for cmd in commands:
        if shutil.which(cmd[0]) is None:
            raise Failure(f"{cmd[0]} not found: run `{' '.join(cmd)}` yourself once it is available")
        click.echo("+ " + " ".join(cmd))
        result = subprocess.run(cmd)
        if result.returncode:
            raise Failure(f"`{' '.join(cmd)}` failed (exit code {result.returncode})")


@autostart.command("install")
@click.option("--enable", is_flag=True, help="Also start it now (systemctl --user enable --now / launchctl load).")
@config_option
def autostart_install(enable, config_file):
    """Write the start-at-login entry for this Python's `tad-daemon serve`."""
    from tad_daemon.cli.autostart import enable_commands, install, login_link, start_commands

    entry = _entry(config_file)
    try:
        install(entry)
    except OSError as e:
        raise Failure(f"cannot write the start-at-login entry: {e}") from None
    click.echo(f"wrote {entry.path}")
    if login_link(entry):
        click.echo(f"linked {login_link(entry)} -> {entry.path}")
    if enable:
        _run_all(enable_commands(entry))
        return
    start = " && ".join(" ".join(c) for c in start_commands(entry)) or "tad-daemon serve"
    click.echo(f"it starts at your next login; to start it now: {start}")


@autostart.command("remove")
@click.option("--disable", is_flag=True, help="Also stop it now (systemctl --user disable --now / launchctl unload).")
@config_option
def autostart_remove(disable, config_file):
    """Remove the start-at-login entry."""
    from tad_daemon.cli.autostart import disable_commands, remove

    entry = _entry(config_file)
    if disable and entry.path.exists():
        _run_all(disable_commands(entry))
    if remove(entry):
        click.echo(f"removed {entry.path}")
        if not disable and disable_commands(entry):
            stop = " && ".join(" ".join(c) for c in disable_commands(entry))
            click.echo(f"if it is running now, stop it with: {stop}")
    else:
        click.echo(f"nothing to remove ({entry.path} does not exist)")


@autostart.command("show")
@config_option
def autostart_show(config_file):
    """Show where the entry goes, whether it is installed, and what it holds."""
    from tad_daemon.cli.autostart import installed

    entry = _entry(config_file)
    click.echo(f"# {entry.path} ({installed(entry)})")
    click.echo(entry.text.rstrip())


COMMANDS = [serve, send, status, config_command, autostart]
