"""tad-daemon: drum one-shots by waveform diffusion, served to your DAW over OSC."""

import os
import sys

__version__ = "0.1.0"

# Idle OpenMP threads sleep rather than spin: beside a DAW (or any busy program) spinning torch threads made
# a forward pass 5-20x slower on two cores (bench/cpu.py, section policy). Read once, when torch loads, so
# it is set here, before any torch import; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# On a Mac, an operation Apple's MPS backend lacks runs on the CPU instead of failing the request (torch
# reads this once, when it loads; docs/benchmarks.md, "Apple MPS").
if sys.platform == "darwin":
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
