"""Start the daemon at login: a systemd user unit (Linux), a launchd agent (macOS), or a command file in the
Startup folder (Windows), each running this interpreter's `-m tad_daemon serve`. No torch here."""

from __future__ import annotations

import os
import plistlib
import sys
from dataclasses import dataclass
from pathlib import Path

UNIT = "tad-daemon.service"
LABEL = "org.tad-daemon.serve"
CARRIED_ENV = ("TAD_DAEMON_HOME", "TAD_DAEMON_CONFIG")  # where this install keeps its folders


@dataclass
class Entry:
    platform: str
    path: Path
    text: str


def command(python: str | None = None, config: str | None = None) -> list[str]:
    cmd = [python or sys.executable, "-m", "tad_daemon", "serve"]
    return cmd + ["--config", config] if config else cmd


def platform_name(name: str | None = None) -> str:
    name = name or sys.platform
    if name.startswith("linux"):
        return "linux"
    if name in ("darwin", "win32"):
        return name
    raise ValueError(f"start at login is not supported on {name} (Linux, macOS and Windows are)")


def _systemd_quote(word: str) -> str:
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def systemd_unit(cmd: list[str], env: dict[str, str]) -> str:
    lines = [
        "[Unit]",
        "Description=tad-daemon: drum one-shots over OSC for your DAW",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_systemd_quote(w) for w in cmd),
        *(f"Environment={_systemd_quote(f'{k}={v}')}" for k, v in sorted(env.items())),
        "Restart=on-failure",
        "RestartSec=5",
        # 2: bad configuration, 3: the port is taken (another daemon): restarting would not help.
        "RestartPreventExitStatus=2 3",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def launchd_plist(cmd: list[str], env: dict[str, str], log_dir: Path) -> str:
    agent = {
        "Label": LABEL,
        "ProgramArguments": cmd,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Interactive",  # answers the DAW: not throttled like background jobs
        "StandardOutPath": str(log_dir / "launchd.log"),
        "StandardErrorPath": str(log_dir / "launchd.log"),
    }
    if env:
        agent["EnvironmentVariables"] = dict(sorted(env.items()))
    return plistlib.dumps(agent).decode()


def windows_cmd(cmd: list[str], env: dict[str, str]) -> str:
    def quote(w: str) -> str:
        return f'"{w}"' if any(c in w for c in ' &()^%!"') else w

    lines = ["@echo off", "rem tad-daemon: start the OSC daemon at login (tad-daemon autostart remove deletes this)"]
    lines += [f'set "{k}={v}"' for k, v in sorted(env.items())]
    lines.append('start "tad-daemon" /min ' + " ".join(quote(w) for w in cmd))
    return "\r\n".join(lines) + "\r\n"


def entry(platform: str, environ: dict[str, str], cmd: list[str], log_dir: Path) -> Entry:
    """Where the start-at-login file goes for `platform` and what it holds (nothing is written here)."""
    env = {k: environ[k] for k in CARRIED_ENV if environ.get(k)}
    home = Path(environ.get("HOME") or environ.get("USERPROFILE") or Path.home())
    if platform == "linux":
        config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
        return Entry(platform, config / "systemd" / "user" / UNIT, systemd_unit(cmd, env))
    if platform == "darwin":
        return Entry(platform, home / "Library" / "LaunchAgents" / f"{LABEL}.plist", launchd_plist(cmd, env, log_dir))
    appdata = Path(environ.get("APPDATA") or home / "AppData" / "Roaming")
    startup = appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"
    return Entry(platform, startup / "tad-daemon.cmd", windows_cmd(cmd, env))


def login_link(e: Entry) -> Path | None:
    """The link that makes systemd start the unit at login (what `systemctl --user enable` makes): without it,
    a unit file alone never starts. None on other platforms, where the file itself is enough."""
    if e.platform != "linux":
        return None
    return e.path.parent / "default.target.wants" / UNIT


def install(e: Entry) -> None:
    """Write the entry, and on Linux link it into default.target.wants so that it starts at the next login."""
    e.path.parent.mkdir(parents=True, exist_ok=True)
    e.path.write_text(e.text, encoding="utf-8", newline="")
    link = login_link(e)
    if link is not None:
        link.parent.mkdir(exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(e.path)


def remove(e: Entry) -> bool:
    """Remove the entry and its login link; False when there was nothing to remove."""
    link = login_link(e)
    if link is not None and link.is_symlink():
        link.unlink()
    if not e.path.exists():
        return False
    e.path.unlink()
    return True


def installed(e: Entry) -> str:
    link = login_link(e)
    if not e.path.exists():
        return "not installed"
    if link is not None and link.resolve() != e.path.resolve():
        return "written but not linked into default.target.wants: run `tad-daemon autostart install` again"
    return "installed"


def start_commands(e: Entry) -> list[list[str]]:
    """What starts an installed entry now, without waiting for the next login."""
    if e.platform == "linux":
        return [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "start", UNIT]]
    if e.platform == "darwin":
        return [["launchctl", "load", "-w", str(e.path)]]
    return []


def enable_commands(e: Entry) -> list[list[str]]:
    """What starts the entry now (and at every login), for `install --enable`."""
    if e.platform == "linux":
        return [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", UNIT]]
    if e.platform == "darwin":
        return [["launchctl", "load", "-w", str(e.path)]]
    return []


def disable_commands(e: Entry) -> list[list[str]]:
    if e.platform == "linux":
        return [["systemctl", "--user", "disable", "--now", UNIT]]
    if e.platform == "darwin":
        return [["launchctl", "unload", "-w", str(e.path)]]
    return []


def default_entry(config: str | None = None) -> Entry:
    from tad_daemon.config import load_config

    log_dir = load_config(config).path("paths.logs")
    return entry(platform_name(), dict(os.environ), command(config=config), log_dir)
