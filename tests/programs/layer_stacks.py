"""Print the layer types of each run's model on JAX: argv[1] is JSON {run: configuration change}."""
import json
import sys

from ch11.training import backend


def main() -> None:
    backend.select("jax")
    from ch11 import params
    from ch11.training import model

    stacks = {}
    for run, update in json.loads(sys.argv[1]).items():
        config = params.load().run(run).model_copy(update=update)
        built = model.build_model(784, 10, config)
        stacks[run] = [type(layer).__name__ for layer in built.layers]
    print(json.dumps(stacks))


if __name__ == "__main__":
    main()
