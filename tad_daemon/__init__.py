"""tad-daemon: drum one-shots by waveform diffusion, served to your DAW over OSC."""

__version__ = "0.1.0"
