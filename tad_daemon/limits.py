"""Facts several parts of the package share, kept once. Torch-free: `tad-daemon send` and the other quick
commands import it without loading torch."""

from __future__ import annotations

INT32 = (-(2**31), 2**31 - 1)  # OSC's integer
MAX_SEED = INT32[1]  # seeds travel as OSC int32

SAMPLE_RATE = 44100
LENGTH = 32768  # ~0.74 s at 44.1 kHz, the seed's one-shot length
CHANNELS = 2

TRAINING_LUFS = -20.0  # every training file is brought to this loudness (the seed's Loudness transform)
SILENT_PEAK = 10 ** (-60 / 20)  # a one-shot whose peak is below -60 dBFS is silent

DRUM_CLASSES = ("kick", "snare", "hat", "perc")  # the bundled models' names and kinds
SAMPLERS = ("dpmpp-2m", "dpmpp-2m-sde", "vsampler")  # tad_daemon/sampling.py implements each
SCHEDULES = ("karras", "linear", "logsnr", "quadratic")
MAX_STEPS = 1000  # sampling steps of one request
LAYERS, MAX_LAYERS, MAX_TAKES = 4, 16, 8  # a layer set's velocities (default, most) and round-robin takes (most)
MAX_TURNS = 32  # a relative of a relative of ...: the turns one tweak may start from
