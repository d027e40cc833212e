"""Train a run (argv[1]) on JAX for 4 epochs in the project in the working folder; print JSON pairs per epoch:
the validation loss fit logged, and the loss the model's weights give, written back unchanged, right after."""
import json
import sys
from pathlib import Path

from ch11.training.seed import compiled_model, prepared


def main() -> None:
    config, x, y = prepared(sys.argv[1], "jax")
    from ch11.training import backend, engine
    import keras

    pairs = []

    class Recheck(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.set_weights(self.model.get_weights())   # a no-op, unless the state read is stale
            again = self.model.evaluate(x["valid"], y["valid"], batch_size=1024, verbose=0, return_dict=True)
            pairs.append([logs["val_loss"], again["loss"]])

    backend.seed_everything(1, False)
    model = compiled_model(config, x["train"])
    engine.fit(model, config, {"train": (x["train"], y["train"]), "valid": (x["valid"], y["valid"])}, 1,
               Path("recheck"), epochs=4, callbacks=[Recheck()])
    print(json.dumps(pairs))


if __name__ == "__main__":
    main()
