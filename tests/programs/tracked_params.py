"""Print the params DVC's own index tracks for each train stage of the project in the working folder (JSON)."""
import json

from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

if __name__ == "__main__":
    with Repo(".") as repo:
        print(json.dumps({stage.addressing: dep.read_params() for stage in repo.index.stages for dep in stage.deps
                          if isinstance(dep, ParamsDependency) and stage.addressing.startswith("train")}))
