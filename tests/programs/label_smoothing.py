"""Print e11_label_smoothing's loss on two examples beside the hand-written smoothed cross-entropy, and
baseline_es's loss (JSON)."""
import json

import numpy as np

from ch11.training import backend


def main() -> None:
    backend.select("jax")
    from ch11 import params
    from ch11.training import model

    config = params.load().run("e11_label_smoothing")
    loss = model.loss_of(config)
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    labels = np.array([0, 1])
    target = (1 - 0.1) * np.eye(3)[labels] + 0.1 / 3
    expected = float(np.mean(-(target * np.log(probs)).sum(axis=1)))
    print(json.dumps({"plain": model.loss_of(params.load().run("baseline_es")), "got": float(loss(labels, probs)),
                      "expected": expected, "config": loss.get_config()["smoothing"]}))


if __name__ == "__main__":
    main()
