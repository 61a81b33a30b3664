"""A real `tad-daemon serve` process on a free port, and a UDP client that talks to it, for the daemon tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf

from tad_daemon.protocol import osc
from tad_daemon.protocol.table import DONE, FAIL, PROTOCOL
from tests.conftest import REPO, TINY_ARCH

FAST_ARCH = TINY_ARCH  # small and fast: see conftest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tad_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAD_DAEMON_")}
    env["TAD_DAEMON_HOME"] = str(home)
    env["TAD_DAEMON_MODELS_BUNDLED"] = "0"  # tests see only the models they make
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def tad(home: Path, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tad_daemon", *args], capture_output=True, text=True,
                          env=tad_env(home), timeout=timeout, **kw)


class Client:
    """One UDP socket: sends requests to the daemon and reads every reply that comes back to it."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.target = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.raw: list[bytes] = []  # every packet received, in order

    def send(self, address: str, *args) -> None:
        self.sock.sendto(osc.encode(address, *args, limit=65000), self.target)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def receive(self, timeout: float) -> osc.Message | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65535)
        except (TimeoutError, BlockingIOError):
            return None
        self.raw.append(data)
        assert len(data) < 1400, f"reply of {len(data)} bytes"
        msg = osc.parse(data)[0]
        assert isinstance(msg, osc.Message) and set(msg.types) <= set("ifs"), msg
        return msg

    def until(self, done, timeout: float = 60) -> list[osc.Message]:
        """Replies until `done(replies)` is true; fails the test on timeout."""
        got: list[osc.Message] = []
        deadline = time.monotonic() + timeout
        while not done(got):
            left = deadline - time.monotonic()
            msg = self.receive(max(left, 0.01)) if left > 0 else None
            assert msg is not None, f"timed out; got {got}"
            got.append(msg)
        return got

    def request(self, address: str, *args, timeout: float = 60) -> list[osc.Message]:
        """Send and collect the replies until the request is complete (its results, or a /tad/fail)."""
        self.send(address, *args)
        cmd = PROTOCOL.get(address)
        results = cmd.expected_results(list(args)) if cmd else 1

        def complete(got):
            ends = [m for m in got if m.address in (DONE, FAIL) and m.args and m.args[0] == address]
            return any(m.address == FAIL for m in ends) or len(ends) >= results

        return self.until(complete, timeout)

    def quiet(self, seconds: float = 0.3) -> list[osc.Message]:
        """Whatever else arrives within `seconds` (to check that nothing more came)."""
        extra = []
        while (msg := self.receive(seconds)) is not None:
            extra.append(msg)
        return extra

    def close(self) -> None:
        self.sock.close()


class Daemon:
    """`tad-daemon serve` in a subprocess, with its own TAD_DAEMON_HOME, on a free port."""

    def __init__(self, home: Path, *args: str, pool: int = 0):
        self.home = home
        self.port = free_port()
        self.args = ["--port", str(self.port), "--set", f"pool.size={pool}", "--set", "generate.steps=2",
                     "--set", "device.threads=1", *args]
        self.log = home / "serve.out"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> Daemon:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "tad_daemon", "serve", *self.args],
                                         env=tad_env(self.home), stdout=out, stderr=subprocess.STDOUT)
        client = Client(self.port)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"daemon exited: {self.output()}"
                client.send("/tad/ping")
                msg = client.receive(0.25)
                if msg is not None and msg.address == DONE:
                    return self
            raise AssertionError(f"daemon not ready after {timeout} s: {self.output()}")
        finally:
            client.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def client(self) -> Client:
        return Client(self.port)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def signal(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def kick_and_snare(tmp_path_factory):
    """A daemon serving two tiny models, kick and snare, for a module's tests (a fixture's body)."""
    home = tmp_path_factory.mktemp("home")
    make_models(home / "models", {"kick": "kick", "snare": "snare"})
    d = Daemon(home).start()
    yield d
    d.stop()


def make_models(folder: Path, names: dict[str, str]) -> None:
    from tests.conftest import make_model

    for i, (name, kind) in enumerate(names.items()):
        path = make_model(folder, name, kind=kind, seed=i, arch=FAST_ARCH)
        # Installed a while ago: a daemon that starts within SETTLE_SECONDS of a file's change loads it only
        # after that (it may still be being copied), and the tests ask for their models at once.
        os.utime(path, (time.time() - 60, time.time() - 60))


def status(client: Client) -> dict:
    (r,) = client.request("/tad/status")
    names = [a.split(":")[1] for a in PROTOCOL["/tad/status"].replies[0].args.split()]
    return dict(zip(names, r.args[1:]))


def wait_status(client: Client, key: str, value, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while status(client)[key] != value:
        assert time.monotonic() < deadline, f"{key} never reached {value}: {status(client)}"
        time.sleep(0.1)


def check_sample_folder(root: Path) -> int:
    """Every WAV in sight is complete; temporary files only ever live in the hidden .tad-tmp folder."""
    wavs = [p for p in root.rglob("*.wav") if ".tad-tmp" not in p.parts]
    for p in wavs:
        assert sf.info(p).frames == 32768, p
    assert not [p for p in root.rglob("*.part") if ".tad-tmp" not in p.parts]
    return len(wavs)

def barrier(client: Client, timeout: float = 120) -> None:
    """Ping until answered: a flood can overflow the daemon's receive buffer (UDP drops, by design), so
    retry; once a ping is answered, everything sent before it has been read."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.send("/tad/ping", "tag=barrier")
        while (msg := client.receive(1.0)) is not None:
            if msg.args == ["/tad/ping", "barrier"]:
                client.quiet(0.2)
                return
    raise AssertionError("the daemon stopped answering")

def terminal_by_tag(replies: list) -> dict[str, list]:
    ends: dict[str, list] = {}
    for m in replies:
        if m.address in (DONE, FAIL):
            ends.setdefault(m.args[-1], []).append(m)
    return ends


def answered_exactly_once(client: Client, requests: list[tuple[str, tuple]], timeout: float = 120) -> None:
    """Send tagged requests at once; every one gets exactly one terminal reply (busy counts)."""
    for tag, (address, *args) in requests:
        client.send(address, *args, f"tag={tag}")
    got = client.until(lambda g: len(terminal_by_tag(g)) >= len(requests), timeout)
    ends = terminal_by_tag(got + client.quiet(0.5))
    tags = {tag: address for tag, (address, *_) in requests}
    assert set(ends) == set(tags)
    for tag, replies in ends.items():
        assert len(replies) == 1, (tag, replies)
        assert replies[0].args[0] == tags[tag]
