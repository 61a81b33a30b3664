"""What a finished run leaves for people: a loss-curve picture and a short model card."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tad_daemon.atomic import atomic_write


def smooth(values: list[float], window: int) -> np.ndarray:
    """Trailing moving average (the first points average what there is so far)."""
    c = np.concatenate([[0.0], np.cumsum(np.asarray(values, dtype=np.float64))])
    i = np.arange(1, len(c))
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def loss_curve(losses: list[float], path: str | os.PathLike, title: str, start_step: int = 1) -> Path:
    """Per-step loss (light) and its moving average (dark), log scale, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; safe in a daemon's subprocess
    import matplotlib.pyplot as plt

    steps = np.arange(start_step, start_step + len(losses))
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot(steps, losses, color="#9ecae1", linewidth=0.8, label="loss per step")
    window = max(1, len(losses) // 50)
    if window > 1:
        ax.plot(steps, smooth(losses, window), color="#08519c", linewidth=1.6, label=f"mean of {window} steps")
    if len(losses) and min(losses) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("v-diffusion loss (MSE)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def model_card(path: str | os.PathLike, name: str, config: dict, training: dict, data_lines: list[str],
               picture: str | None) -> Path:
    """A Markdown card: what the model is, what it learned from, how, and under which license."""
    t = training
    lines = [
        f"# {name}",
        "",
        f"Drum class: {config['kind']}. Architecture: {config.get('preset') or 'custom'} "
        f"({t['parameters'] / 1e6:.2f} M parameters), {config['length']} samples at {config['sample_rate']} Hz "
        f"stereo ({config['length'] / config['sample_rate']:.2f} s).",
        "",
        f"License: {config['license']}.",
        "",
        "## Training",
        "",
        f"- Base model: {t['base'] or 'none (trained from scratch)'}",
        f"- Steps: {t['steps']} optimiser steps of {t['batch']} one-shots "
        f"(micro-batch {t['micro_batch']} x {t['accumulation']} accumulated x {t['processes']} processes)",
        f"- Final loss: {t['final_loss']:.4f} (mean of the last {t['final_loss_steps']} steps)",
        f"- Recipe: AdamW lr {t['lr']:g}, betas {tuple(t['betas'])}, eps {t['eps']:g}, weight decay "
        f"{t['weight_decay']:g}; EMA beta {t['ema_beta']}, power {t['ema_power']}; v-diffusion; "
        f"gradient clipping {t['grad_clip'] or 'off'}",
        *([f"- Distilled: {d['method']} of {d['teacher']} from {d['teacher_steps']} to {d['student_steps']} "
           f"DDIM steps, {d['steps_per_round']} steps a round; samples with the VSampler in {d['student_steps']} "
           f"steps on the {d.get('grid', 'linear')} grid"] if (d := t.get("distilled")) else []),
        f"- Device: {t['device']}, precision {t['precision']}; {t['hours']:.2f} hours of training",
        f"- Date: {t['date']}",
        "",
        "## Data",
        "",
        "```",
        *data_lines,
        "```",
        "",
    ]
    if picture:
        lines += ["## Loss", "", f"![loss curve]({picture})", ""]
    return atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines), encoding="utf-8"))
