"""Every figure the report draws is readable at a glance: on the saved (tightly cropped) page its plot area is at
least half, and no two pieces of text overlap — measured on the drawn figures, at the report's worst cases (the
most curves, the longest labels)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.text import Text

from ch11.report import claims, figures

MEASURED: list[dict] = []


@pytest.fixture(autouse=True)
def measure(monkeypatch):
    """Measure each figure just before ch11.report.figures.save writes it."""
    save = figures.save

    def measured(fig, path, title=None):
        if title:
            fig.suptitle(title, fontweight="bold")
            fig.tight_layout()
        renderer = fig.canvas.get_renderer()
        fig.draw(renderer)
        page = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)   # inches -> pixels
        axes = sum(ax.get_window_extent(renderer).width * ax.get_window_extent(renderer).height
                   for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>")
        # a slanted label's box is not its outline: compare only upright and vertical texts
        texts = [t for t in drawn_texts(fig, renderer)
                 if t.get_visible() and t.get_text().strip() and t.get_rotation() % 90 == 0]
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
        overlaps = [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2)
                    if ba.overlaps(bb) and _area(ba.intersection(ba, bb)) > 4]
        MEASURED.append({"path": path, "share": axes / (page.width * page.height), "overlaps": overlaps})
        return save(fig, path)

    monkeypatch.setattr(figures, "save", measured)
    MEASURED.clear()


def drawn_texts(fig, renderer) -> list[Text]:
    """The texts a reader sees: titles, axis labels, tick labels in view (matplotlib keeps labels of ticks outside
    the view, undrawn), annotations, legends."""
    texts = [*fig.texts, *(t for legend in fig.legends for t in legend.get_texts())]
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        centre = lambda t, i: t.get_window_extent(renderer).get_points().mean(axis=0)[i]  # noqa: E731
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        texts += [t for t in ax.get_xticklabels(which="both") if box.x0 - 1 <= centre(t, 0) <= box.x1 + 1]
        texts += [t for t in ax.get_yticklabels(which="both") if box.y0 - 1 <= centre(t, 1) <= box.y1 + 1]
        if ax.get_legend():
            texts += ax.get_legend().get_texts()
    return texts


def _area(box) -> float:
    return 0.0 if box is None else box.width * box.height


def readable() -> None:
    assert MEASURED
    for m in MEASURED:
        assert m["share"] >= 0.5, (m["path"].name, round(m["share"], 2))
        assert not m["overlaps"], (m["path"].name, m["overlaps"][:3])


def curve(i: int, epochs: int, label: str) -> dict:
    mean = 80 + 10 * (1 - np.exp(-np.arange(epochs) / (5 + i)))
    return {"label": f"{label} {i:02d}", "epochs": np.arange(1, epochs + 1), "mean": mean,
            "std": np.full(epochs, 0.4), "n_note": "n=10→3, from epoch 39",
            "lr": np.full(epochs, 0.01) * 0.9 ** np.arange(epochs)}


MOST_RUNS = max(len(exp.runs) for exp in claims.load().experiments.values())   # today experiment 8's


@pytest.mark.parametrize("runs, label", [(MOST_RUNS, "Nesterov, 30 epochs"),            # the largest experiment
                                         (6, "SELU + alpha dropout, constant 0.025")])  # exercise 8
def test_learning_curves_of_the_largest_experiments(tmp_path, runs, label):
    figures.learning_curves(tmp_path / "curves.png", "Exercise 8: a deep net (20 × 100) on Fashion-MNIST, our "
                            "substitute for CIFAR-10 — validation accuracy per epoch",
                            [curve(i, 30 + 5 * i, label) for i in range(runs)])
    figures.learning_rates(tmp_path / "lr.png", "Learning rate each schedule used (first seed)",
                           [curve(i, 30, label) for i in range(runs)])
    readable()


def test_the_forest_plot_of_every_effect(tmp_path):
    readings = list(figures.READING_COLORS)
    rows = [{"label": f"technique {i}: a long description of what it does (vs its matched baseline)",
             "diff": 0.1 * i - 2, "ci_low": 0.1 * i - 2.6, "ci_high": 0.1 * i - 1.4, "reading": readings[i % 7],
             "claim": 0.5 if i % 5 == 0 else None} for i in range(52)]
    figures.forest_plot(tmp_path / "forest.png", "Each technique vs its matched baseline", rows, 0.5)
    readable()


def test_bars_layers_variance_confusion_and_activations(tmp_path):
    bars = [{"label": f"variant {i} — MC dropout", "values": [85.0 + i / 10, 85.4, 86.0], "claimed": 85.2}
            for i in range(8)]
    figures.variant_bars(tmp_path / "bars.png", "Exp. 11: Dropout — by variant",
                         [{"xlabel": "test accuracy (%)", "bars": bars},
                          {"xlabel": "validation accuracy after epoch 1 (%)", "bars": bars}])
    layers = list(range(1, 22))
    means = {"grad_norm": [0.1 * i for i in layers], "activation_std": [0.5] * 21,
             "weight_var": [0.01] * 21, "theory_var": [0.01] * 21}
    series = [{"label": f"run {i}", "layers": layers, "tick_labels": [str(x) for x in layers], "init": means,
               "after": means} for i in range(5)]
    figures.layer_diagnostics(tmp_path / "layers.png", "Per-layer kernel gradient norm and activation std", series)
    figures.init_variance(tmp_path / "variance.png", "Initialisation: kernel variance vs theory", series[:3])
    actual = np.repeat(np.arange(10), 30)
    figures.confusion_heatmap(tmp_path / "confusion.png", "Confusion matrix: production (first seed)", actual,
                              (actual + (actual % 3 == 0)) % 10,
                              ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                               "Bag", "Ankle boot"])
    figures.activation_shapes(tmp_path / "activations.png")
    readable()
