"""Build every optimizer params.yaml's `optimizers` table names, on JAX, as a run naming it gets it; print JSON
{name: [Keras class, its config]} (argv[1]: a scratch folder for the edited params.yaml)."""
import json
import sys
from pathlib import Path

import yaml

from ch11.training import backend


def main() -> None:
    backend.select("jax")
    from ch11 import params
    from ch11.training import model

    raw = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
    for name in raw["optimizers"]:
        raw["runs"][f"probe_{name}"] = {"template": "none", "optimizer": {"name": name}}
    edited = Path(sys.argv[1]) / "params.yaml"
    edited.write_text(yaml.safe_dump(raw), encoding="utf-8")
    loaded = params.load(edited)
    built = {name: model.build_optimizer(loaded.run(f"probe_{name}"), 10) for name in raw["optimizers"]}
    print(json.dumps({name: [type(opt).__name__, opt.get_config()] for name, opt in built.items()}, default=str))


if __name__ == "__main__":
    main()
