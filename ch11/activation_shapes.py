"""The figure of experiment 4's activation functions: their shapes computed with numpy (no training data)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import erf

from ch11.figures import COLORS, STYLE, plt, save

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "ReLU": lambda z: np.maximum(z, 0),
    "LeakyReLU (α=0.2)": lambda z: np.where(z > 0, z, 0.2 * z),
    "ELU (α=1)": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "SELU": lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
    "GELU": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),
    "Swish (SiLU)": lambda z: z * _sigmoid(z),
}


def activation_shapes(path: Path) -> Path:
    """The activation functions of experiment 4 (and exercise 8), computed with numpy on z in [-4, 4]."""
    z = np.linspace(-4, 4, 401)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 4, figsize=(13, 6.2), sharex=True, sharey=True)
        for ax, (i, (name, fn)) in zip(axes.flat, enumerate(ACTIVATIONS.items())):
            ax.axhline(0, color="grey", linewidth=0.8)
            ax.axvline(0, color="grey", linewidth=0.8)
            ax.plot(z, fn(z), color=COLORS[i % 10], linewidth=2.2)
            ax.set_title(name)
            ax.set_xlim(-4, 4)
            ax.set_ylim(-2.2, 4.2)
        for ax in axes[1]:
            ax.set_xlabel("input z")
        for ax in axes[:, 0]:
            ax.set_ylabel("activation f(z)")
        fig.suptitle("Activation functions (computed with numpy)", fontweight="bold")
        fig.tight_layout()
        return save(fig, path)
