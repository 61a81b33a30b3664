"""Seeds: a one-shot's seed says all of its starting noise, so any file can be made again from its metadata.
Imports neither torch nor numpy: the CLI checks what it sends with it.
"""

from __future__ import annotations

import secrets

from tad_daemon.limits import MAX_SEED, MAX_TURNS


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def check_seed(seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}")
    return seed


def seeds_from(seed: int | None, count: int) -> list[int]:
    """The seeds of `count` one-shots: seed, seed + 1, ... (wrapping at MAX_SEED), from a random one when
    `seed` is None; so each file of a batch can be made again on its own."""
    if count < 1:
        raise ValueError("count must be at least 1")
    base = random_seed() if seed is None or seed < 0 else check_seed(seed)
    return [(base + i) % (MAX_SEED + 1) for i in range(count)]


def parse_turns(text: str | None) -> tuple[tuple[int, float], ...]:
    """A relative's recipe, "SEED:AMOUNT,SEED:AMOUNT": its seed's noise turned by AMOUNT * 90 degrees towards
    SEED's noise, turn after turn (tweak's `turns`, as its replies and files give it); () for none."""
    if not text or not text.strip():
        return ()
    turns = []
    for part in text.split(","):
        seed, _, amount = part.strip().partition(":")
        try:
            turn = (check_seed(int(seed)), float(amount))
        except ValueError:
            raise ValueError(f"turns: {part.strip()!r} is not SEED:AMOUNT (a seed and an amount 0 to 1)") from None
        if not 0.0 <= turn[1] <= 1.0:
            raise ValueError(f"turns: the amount in {part.strip()!r} must be between 0 and 1")
        turns.append(turn)
    if len(turns) > MAX_TURNS:
        raise ValueError(f"turns: at most {MAX_TURNS} (a relative of a relative of ...)")
    return tuple(turns)


def format_turns(turns: tuple[tuple[int, float], ...]) -> str:
    return ",".join(f"{seed}:{amount:.4g}" for seed, amount in turns)
