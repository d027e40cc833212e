"""Print how many of the first ``n`` Fashion-MNIST test images (argv: saved model, n) the model classifies right,
recounted in the project in the working folder from the validated arrays, pixels / 255 (a run with
input_scaling 'unit' and every class): what the evaluate stage's test_accuracy must say, found another way."""
import sys

import numpy as np


def main() -> None:
    import keras

    model = keras.saving.load_model(sys.argv[1], compile=False)
    n = int(sys.argv[2])
    with np.load("data/validated/fashion_mnist.npz") as data:
        x, y = data["x_test"][:n], data["y_test"][:n]
    predicted = np.argmax(model.predict(x.reshape(n, -1).astype("float32") / 255, verbose=0), axis=1)
    print(int(np.sum(predicted == y)))


if __name__ == "__main__":
    main()
