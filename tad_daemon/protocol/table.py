"""The protocol as data: every address, its typed positional arguments, options and reply shapes.

The daemon validates requests with `bind` and builds its replies by name with `Reply.values`; clients learn
from it how many terminal replies to wait for and read replies by name (`read_reply`); a test renders it
and compares the result with the tables in docs/osc.md, so code and docs cannot drift.
`python -m tad_daemon.protocol.table` prints the tables.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from tad_daemon.kinds import KIT_DEFAULT
from tad_daemon.limits import INT32, LAYERS, MAX_LAYERS, MAX_SEED, MAX_STEPS, MAX_TAKES, SAMPLERS
from tad_daemon.training.settings import MAX_STEPS as MAX_TRAIN_STEPS
from tad_daemon.training.settings import MAX_STUDENT_STEPS, MAX_TEACHER_STEPS

MAX_STRING = 4096  # bytes of UTF-8 in any string argument (paths included)
MAX_TAG = 128
DONE, FAIL = "/tad/done", "/tad/fail"
UNKNOWN = "/unknown"  # the command named in a /tad/fail for a packet that was not OSC
NOTIFY_TTL = 3600.0  # seconds a /tad/notify registration lives without renewal

_OPTION = re.compile(r"^([a-z_]+)=(.*)$", re.DOTALL)
_TYPE_NAMES = {"i": "an integer (i)", "f": "a number (f)", "s": "a string (s)"}


class ProtocolError(ValueError):
    """A request that does not fit the table; the message goes back in a /tad/fail."""


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # "i", "f" or "s"
    default: int | float | str | None = None  # None: required
    lo: float | None = None
    hi: float | None = None
    path: bool = False  # an absolute path (the client makes relative ones absolute)
    choices: tuple[str, ...] = ()  # a string argument's allowed values, besides its default
    unset: bool = False  # the default means "not given" (the daemon's or the model's own): bound as None

    @property
    def required(self) -> bool:
        return self.default is None

    def doc(self) -> str:
        text = f"{self.type}:{self.name}"
        return text if self.required else f"[{text}={_literal(self.default)}]"

    def option_doc(self) -> str:
        return f"{self.name}={_literal(self.default)}"


_CAST = {"i": int, "f": float, "s": str}


@dataclass(frozen=True)
class Reply:
    """One reply shape: `words` (an address, and for terminal replies the command) then typed arguments."""

    words: str
    args: str = ""  # "s:path s:model i:seed", as in docs/osc.md
    per: str = ""  # "file": one such reply per result

    @property
    def address(self) -> str:
        return self.words.split()[0]

    @property
    def fields(self) -> list[tuple[str, str]]:
        """(type, name) of each argument after the words."""
        return [tuple(a.split(":", 1)) for a in self.args.split()]

    def types(self) -> str:
        return "".join(t for t, _ in self.fields)

    def values(self, named: dict) -> tuple:
        """The reply's arguments, in the table's order and types, from `named` (which may hold more)."""
        missing = [n for _, n in self.fields if named.get(n) is None]
        if missing:
            raise KeyError(f"{self.words}: no value for {', '.join(missing)}")
        return tuple(_CAST[t](named[n]) for t, n in self.fields)

    def read(self, args: list) -> dict:
        """A received reply's arguments (after the address) by name; a tag after them is under "tag"."""
        values = list(args)[len(self.words.split()) - 1:]
        named = {n: v for (_, n), v in zip(self.fields, values)}
        if len(values) > len(self.fields):
            named["tag"] = values[len(self.fields)]
        return named

    def doc(self) -> str:
        text = f"`{self.words} {self.args}`" if self.args else f"`{self.words}`"
        return f"one {text} per {self.per}" if self.per else text


@dataclass(frozen=True)
class Command:
    address: str
    args: tuple[Arg, ...] = ()
    options: tuple[Arg, ...] = ()
    replies: tuple[Reply, ...] = ()
    # The argument that says how many terminal replies come ("" = one): a count, or a list of names, or
    # two counts multiplied ("velocities*round_robins")
    results: str = ""

    def result_count(self, args: dict) -> int:
        """How many terminal replies a request bound to `args` gets."""
        count = 1
        for name in self.results.split("*") if self.results else ():
            value = args[name]
            count *= len(split_names(value)) if isinstance(value, str) else value
        return count

    def expected_results(self, values: list) -> int:
        """How many terminal replies a well-formed request gets (a /tad/fail ends a request early)."""
        count = 1
        for name in self.results.split("*") if self.results else ():
            count *= self._expected(name, values)
        return count

    def _expected(self, name: str, values: list) -> int:
        i = next(i for i, a in enumerate(self.args) if a.name == name)
        if self.args[i].type == "s":
            value = values[i] if i < len(values) else self.args[i].default
            named = split_names(value) if isinstance(value, str) and not _OPTION.match(value) else []
            return len(named) or len(split_names(self.args[i].default))
        if i < len(values) and isinstance(values[i], (int, float)) and not isinstance(values[i], bool):
            v = values[i]
            if math.isfinite(v) and v == int(v) and v >= 1:
                return int(v)
        return self.args[i].default if isinstance(self.args[i].default, int) and self.args[i].default >= 1 else 1

    def args_doc(self) -> str:
        return " ".join(a.doc() for a in self.args) or "–"

    def options_doc(self) -> str:
        return " ".join(f"`{o.option_doc()}`" for o in self.options) or "–"

    def replies_doc(self) -> str:
        return ", then ".join(r.doc() for r in self.replies)

    def reply(self, address: str) -> Reply:
        """The reply shape sent to `address` (DONE: the terminal one)."""
        return next(r for r in self.replies if r.address == address)


def split_names(text: str) -> list[str]:
    """A comma-separated list of names (a kit's models)."""
    return [n.strip() for n in text.split(",") if n.strip()]


def _literal(value) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


COUNT = Arg("count", "i", 1, lo=1)  # the upper bound is the daemon's generate.max_count
SEED = Arg("seed", "i", -1, lo=-1, hi=MAX_SEED, unset=True)  # -1: a random one
SAMPLER = Arg("sampler", "s", "", choices=SAMPLERS, unset=True)  # "": generate.sampler, or the model's
POST = Arg("post", "i", 1, lo=0, hi=1)
STEPS = Arg("steps", "i", 0, lo=0, hi=MAX_STEPS, unset=True)  # 0: generate.steps, or the model's
TUNE = Arg("tune", "s", "", unset=True)  # "": as made; a note (A1, C#2): the one-shot's fundamental moved onto it
MODEL = Arg("model", "s")
VEL = Arg("vel", "f", 1.0, lo=0.01, hi=1.0, unset=True)  # how hard the hit; 1: a full one
BLEND = Arg("blend", "s", "", unset=True)  # kinds mixed in by weight: "tom:0.3" (a model of several kinds)

PROTOCOL: dict[str, Command] = {c.address: c for c in (
    Command("/tad/ping", replies=(Reply("/tad/done /tad/ping"),)),
    Command("/tad/generate",
            args=(MODEL, COUNT, SEED, STEPS),
            options=(SAMPLER, POST, TUNE, VEL, BLEND),
            replies=(Reply("/tad/done /tad/generate", "s:path s:model i:seed i:steps s:sampler i:pool s:tuning",
                           "file"),),
            results="count"),
    Command("/tad/vary",
            args=(MODEL, Arg("source_path", "s", path=True), Arg("strength", "f", lo=0.0, hi=1.0), COUNT, SEED),
            options=(STEPS, SAMPLER, POST, TUNE, VEL, BLEND),
            replies=(Reply("/tad/done /tad/vary", "s:path s:model i:seed f:strength s:source_path s:tuning",
                           "file"),),
            results="count"),
    Command("/tad/morph",
            args=(MODEL, Arg("a_path", "s", path=True), Arg("b_path", "s", path=True),
                  Arg("position", "f", 0.5, lo=0.0, hi=1.0), COUNT),
            options=(STEPS, POST),
            replies=(Reply("/tad/done /tad/morph", "s:path s:model f:position s:a_path s:b_path", "file"),),
            results="count"),
    Command("/tad/tweak",
            args=(MODEL, Arg("seed", "i", lo=0, hi=MAX_SEED), Arg("amount", "f", lo=0.0, hi=1.0), COUNT),
            options=(STEPS, SAMPLER, POST, TUNE, VEL, BLEND, Arg("turns", "s", "", unset=True)),
            replies=(Reply("/tad/done /tad/tweak", "s:path s:model i:seed f:amount i:variant s:tuning s:turns",
                           "file"),),
            results="count"),
    Command("/tad/repaint",
            args=(MODEL, Arg("source_path", "s", path=True), Arg("start", "f", lo=0.0), Arg("end", "f", lo=0.0),
                  Arg("strength", "f", 1.0, lo=0.0, hi=1.0), COUNT, SEED),
            options=(STEPS, SAMPLER, POST),
            replies=(Reply("/tad/done /tad/repaint", "s:path s:model i:seed f:start f:end s:source_path", "file"),),
            results="count"),
    Command("/tad/kit",
            args=(Arg("models", "s", ",".join(KIT_DEFAULT)), SEED),
            options=(STEPS, SAMPLER, POST, TUNE, VEL),
            replies=(Reply("/tad/done /tad/kit", "s:path s:model i:seed s:tuning", "model"),),
            results="models"),
    Command("/tad/layers",
            args=(MODEL, Arg("velocities", "i", LAYERS, lo=1, hi=MAX_LAYERS), Arg("round_robins", "i", 1, lo=1,
                                                                                       hi=MAX_TAKES), SEED),
            options=(STEPS, SAMPLER, POST, TUNE, BLEND),
            replies=(Reply("/tad/done /tad/layers", "s:path s:model i:seed f:velocity i:take s:tuning", "file"),),
            results="velocities*round_robins"),
    Command("/tad/models",
            replies=(Reply("/tad/model", "i:index i:total s:name s:kind s:preset s:source s:license s:runs_on "
                                         "s:kinds", "model"),
                     Reply("/tad/done /tad/models", "i:total"))),
    Command("/tad/status",
            replies=(Reply("/tad/done /tad/status", "s:version s:device i:models i:queue i:pool_ready "
                                                    "i:jobs_queued s:running_job f:job_progress"),)),
    Command("/tad/notify", args=(Arg("on", "i", lo=0, hi=1), Arg("port", "i", 0, lo=0, hi=65535, unset=True)),
            replies=(Reply("/tad/done /tad/notify", "i:on i:port"),)),
    Command("/tad/train",
            args=(Arg("name", "s"), Arg("dataset_dir", "s", path=True), Arg("base", "s", "", unset=True),
                  Arg("steps", "i", 0, lo=0, hi=MAX_TRAIN_STEPS, unset=True), Arg("now", "i", 0, lo=0, hi=1)),
            replies=(Reply("/tad/done /tad/train", "s:job_id s:name s:state"),)),
    Command("/tad/distill",
            args=(Arg("name", "s"), MODEL, Arg("steps", "i", 0, lo=0, hi=MAX_STUDENT_STEPS, unset=True),
                  Arg("now", "i", 0, lo=0, hi=1), Arg("dataset_dir", "s", "", path=True, unset=True)),
            options=(Arg("train_steps", "i", 0, lo=0, hi=MAX_TRAIN_STEPS, unset=True),
                     Arg("teacher_steps", "i", 0, lo=0, hi=MAX_TEACHER_STEPS, unset=True),
                     Arg("replace", "i", 0, lo=0, hi=1)),
            replies=(Reply("/tad/done /tad/distill", "s:job_id s:name s:state"),)),
    Command("/tad/jobs",
            replies=(Reply("/tad/job", "s:job_id s:name s:state i:step i:total f:loss", "job"),
                     Reply("/tad/done /tad/jobs", "i:total"))),
    Command("/tad/cancel", args=(Arg("job_id", "s"),), replies=(Reply("/tad/done /tad/cancel", "s:job_id s:state"),)),
)}



@dataclass(frozen=True)
class Broadcast(Reply):
    """A message to every registered client, not a reply to one request."""

    when: str = ""


BROADCASTS: dict[str, Broadcast] = {b.address: b for b in (
    Broadcast("/tad/progress", "s:job_id s:name i:step i:total f:loss f:eta_seconds",
              when="a training job advanced (at most once a second per job)"),
    Broadcast("/tad/job/state", "s:job_id s:name s:state s:message",
              when="a job changed state (queued, running, paused, done, failed, cancelled)"),
    Broadcast("/tad/model/added", "s:name s:kind",
              when="a model was loaded or reloaded (file added to or replaced in the models folder, or a finished "
                   "fine-tune)"),
    Broadcast("/tad/model/removed", "s:name", when="a model file was removed"),
    Broadcast("/tad/sample", "s:path s:model", when="a new one-shot was written to the sample folder"),
)}

# Addresses the daemon sends and never answers (answering a reply could start a loop between two daemons).
REPLY_ADDRESSES = {DONE, FAIL, "/tad/model", "/tad/job", *BROADCASTS}


def read_reply(address: str, args: list) -> dict:
    """A message from the daemon by name: a /tad/done's fields (and "command"), a /tad/fail's "command" and
    "message", a list line's (/tad/model, /tad/job) or a broadcast's fields; {} for anything else."""
    if address == FAIL:
        return {"command": args[0], "message": args[1]} if len(args) >= 2 else {}
    if address == DONE and args and args[0] in PROTOCOL:
        return {"command": args[0], **PROTOCOL[args[0]].reply(DONE).read(args)}
    shapes = [r for c in PROTOCOL.values() for r in c.replies if r.words == address] + (
        [BROADCASTS[address]] if address in BROADCASTS else [])
    return shapes[0].read(args) if shapes else {}


# -- binding a request to its command ------------------------------------------------------------------------
@dataclass
class Arguments:
    """A request's arguments and options by name (None: not given, see Arg.unset), and its tag."""

    args: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    tag: str | None = None


def find_tag(values: list) -> str | None:
    """The request's tag if it has a readable one (used to tag even the /tad/fail of a bad request)."""
    for v in values:
        if isinstance(v, str) and v.startswith("tag=") and len(v.encode()) <= MAX_TAG + 4:
            return v[4:]
    return None


def _describe(value) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true (T)", False: "false (F)", None: "nil (N)"}[value]
    if isinstance(value, bytes):
        return "a blob (b)"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    return "a number"


def _check_range(arg: Arg, value):
    def text(bound: float) -> str:
        return str(int(bound)) if arg.type == "i" else f"{bound:g}"

    if arg.lo is not None and arg.hi is not None and not arg.lo <= value <= arg.hi:
        raise ProtocolError(f"{arg.name} must be between {text(arg.lo)} and {text(arg.hi)}")
    if arg.lo is not None and value < arg.lo:
        raise ProtocolError(f"{arg.name} must be at least {text(arg.lo)}")
    if arg.hi is not None and value > arg.hi:
        raise ProtocolError(f"{arg.name} must be at most {text(arg.hi)}")
    if arg.type == "i" and not INT32[0] <= value <= INT32[1]:
        raise ProtocolError(f"{arg.name} does not fit a 32-bit integer")
    return value


def coerce(arg: Arg, value):
    """`value` as `arg` wants it (an integral float is an int: Max sends `4.`), or ProtocolError."""
    if arg.type == "s":
        if not isinstance(value, str):
            raise ProtocolError(f"{arg.name}: expected {_TYPE_NAMES['s']}, got {_describe(value)}")
        if len(value.encode("utf-8", "surrogatepass")) > MAX_STRING:
            raise ProtocolError(f"{arg.name}: longer than {MAX_STRING} bytes")
        if arg.choices and value != arg.default and value not in arg.choices:
            raise ProtocolError(f"unknown {arg.name} {value[:40]!r} (known: {', '.join(arg.choices)})")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{arg.name}: expected {_TYPE_NAMES[arg.type]}, got {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError(f"{arg.name}: expected a finite number, got {value}")
    if arg.type == "i":
        if value != int(value):
            raise ProtocolError(f"{arg.name}: expected an integer, got {value:g}")
        value = int(value)
    else:
        value = float(value)
    return _check_range(arg, value)


def _coerce_option(arg: Arg, text: str):
    if arg.type == "s":
        return coerce(arg, text)
    try:
        value = int(text) if arg.type == "i" else float(text)
    except ValueError:
        raise ProtocolError(f"option {arg.name}: expected {_TYPE_NAMES[arg.type]}, got {text[:40]!r}") from None
    return coerce(arg, value)


def bind(cmd: Command, values: list) -> Arguments:
    """Positional arguments (defaults filled in), then `key=value` options, then the tag; or ProtocolError.

    An optional argument slot holding a `key=value` string starts the options (names and numbers never
    contain '='). An argument whose default means "not given" (Arg.unset) is None when it has that value.
    """
    bound = Arguments()
    n = 0
    for arg, value in zip(cmd.args, values):
        if not arg.required and isinstance(value, str) and _OPTION.match(value):
            break
        bound.args[arg.name] = coerce(arg, value)
        n += 1
    missing = [a for a in cmd.args[n:] if a.required]
    if missing:
        a = missing[0]
        raise ProtocolError(f"missing argument {a.type}:{a.name}")
    for arg in cmd.args[n:]:
        bound.args[arg.name] = arg.default
    known = {o.name: o for o in cmd.options}
    for value in values[n:]:
        match = _OPTION.match(value) if isinstance(value, str) else None
        if match is None:
            takes = cmd.args_doc() if cmd.args else "no arguments"
            raise ProtocolError(f"too many arguments ({cmd.address} takes {takes})")
        key, text = match.groups()
        if key in bound.options or (key == "tag" and bound.tag is not None):
            raise ProtocolError(f"option {key} given twice")
        if key == "tag":
            if len(text.encode()) > MAX_TAG:
                raise ProtocolError(f"tag longer than {MAX_TAG} bytes")
            bound.tag = text
        elif key in known:
            bound.options[key] = _coerce_option(known[key], text)
        else:
            names = ", ".join(["tag", *known])
            raise ProtocolError(f"unknown option {key!r} (options: {names})")
    for name, arg in known.items():
        bound.options.setdefault(name, arg.default)
    for arg in (*cmd.args, *cmd.options):
        given = bound.args if arg.name in bound.args else bound.options
        if arg.unset and given.get(arg.name) == arg.default:
            given[arg.name] = None
    return bound


# -- the tables of docs/osc.md ---------------------------------------------------------------------------------
def request_rows() -> list[list[str]]:
    return [[f"`{c.address}`", f"`{c.args_doc()}`" if c.args else "–", c.options_doc(), c.replies_doc()]
            for c in PROTOCOL.values()]


def broadcast_rows() -> list[list[str]]:
    return [[f"`{b.address}`", f"`{b.args}`", b.when] for b in BROADCASTS.values()]


def markdown() -> str:
    def table(head: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])

    return (table(["address", "arguments", "options", "replies"], request_rows()) + "\n\n"
            + table(["address", "arguments", "when"], broadcast_rows()))


if __name__ == "__main__":
    print(markdown())
