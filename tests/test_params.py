"""``ch11.params.load`` on copies of the real params.yaml: bad edits are one clear error, good ones merge.

Behaviour is forced by construction (a run or template the test adds, with values of its own) and checked
against values read from the file, never against today's values: a legitimate edit of params.yaml keeps
these tests passing."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from ch11 import params
from ch11.errors import PipelineError
from tests.helpers import PROJECT_ROOT, readme_override

REPO_PARAMS = PROJECT_ROOT / "params.yaml"
# Added to every copy: a run of the test's own (no template), and a template with SGD momentum that a run names
PROBE_SGD = {"optimizer": {"name": "sgd", "momentum": 0.9}}


def real_params() -> dict:
    """The real params.yaml, plus the run ``probe`` (template none) and the template ``probe_sgd``."""
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    raw["templates"]["probe_sgd"] = PROBE_SGD
    raw["runs"]["probe"] = {"template": "none"}
    return raw


def write_params(tmp_path: Path, raw: dict) -> params.Params:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return params.load(path)


def load_edited(tmp_path: Path, keys: tuple[str, ...], value) -> params.Params:
    """Load a copy of params.yaml (``real_params``) with ``value`` set at the key path ``keys``."""
    raw = real_params()
    *parents, last = keys
    functools.reduce(lambda node, key: node.setdefault(key, {}), parents, raw)[last] = value
    return write_params(tmp_path, raw)


@pytest.mark.parametrize("keys, value, expected", [
    # A typo in `defaults` reaches every run; it is reported at the first run that inherits it.
    (("defaults", "epochz"), 10,
     "unknown key 'defaults.epochz' (value 10); remove it or fix its spelling"),
    (("runs", "probe", "optimizer", "learning_rate"), "fast",
     "'runs.probe.optimizer.learning_rate' = 'fast': Input should be a valid number"),
    (("download", "retries"), -1, "'download.retries' = -1: Input should be greater than or equal to 0"),
    (("download", "backoff_s"), -0.5,
     "'download.backoff_s' = -0.5: Input should be greater than or equal to 0"),
    (("download", "cifar10", "files", "cifar-10-python.tar.gz", "hash_of"), "gzip",
     "'download.cifar10.files.cifar-10-python.tar.gz.hash_of' = 'gzip': "
     "Input should be 'decompressed' or 'file'"),
    (("runs", "probe", "optimizer", "name"), "adamm",
     "'runs.probe.optimizer.name' = 'adamm': Input should be 'sgd', 'adagrad', 'rmsprop', 'adam', "
     "'adamax', 'nadam' or 'adamw'"),
    (("runs", "probe", "activation"), "gelux",
     "'runs.probe.activation' = 'gelux': Input should be 'sigmoid', 'tanh', 'relu', 'leaky_relu', "
     "'prelu', 'elu', 'selu', 'gelu' or 'swish'"),
    (("downlaod",), {}, "unknown key 'downlaod'"),
])
def test_a_bad_value_is_one_error_naming_the_key_and_value(tmp_path, keys, value, expected):
    with pytest.raises(PipelineError) as info:
        load_edited(tmp_path, keys, value)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'params.yaml'}: ") or message.startswith("params.yaml: ")
    assert expected in message
    assert message.endswith("Fix params.yaml and rerun (run keys inherit 'defaults').")


def test_missing_and_invalid_files_are_clear_errors(tmp_path):
    with pytest.raises(PipelineError, match="not found; run the stage from the project root"):
        params.load(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("download: [unclosed\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="is not valid YAML"):
        params.load(tmp_path / "params.yaml")


def test_a_run_is_defaults_deep_merged_with_its_template_then_its_own_entry(tmp_path):
    raw = real_params()
    raw["templates"]["probe_mix"] = {"dropout": 0.3, "l2": 0.01, "optimizer": {"learning_rate": 0.05}}
    raw["runs"]["probe"] = {"template": "probe_mix", "dropout": 0.4, "optimizer": {"name": "sgd", "momentum": 0.5}}
    loaded = write_params(tmp_path, raw)
    run, defaults = loaded.run("probe"), raw["defaults"]
    assert (run.dropout, run.l2) == (0.4, 0.01)   # its own value over the template's, the template's over the defaults'
    assert (run.activation, run.batch_size) == (defaults["activation"], defaults["batch_size"])
    # nested dicts merge key by key: the name and momentum its own, the rate the template's, the rest the optimizer's
    assert run.optimizer.model_dump() == {**raw["optimizers"]["sgd"], "name": "sgd", "learning_rate": 0.05,
                                          "momentum": 0.5}
    for group, dataset in params.RUN_GROUPS.items():
        assert all(loaded.dataset_of(name) == dataset for name in raw[group] or {}), group
    for dataset in ("fashion_mnist", "cifar10"):   # each file's hash is of the file when it says so
        for name, entry in raw["download"][dataset]["files"].items():
            assert getattr(loaded.download, dataset).files[name].hash_of == entry.get("hash_of", "decompressed"), name
    known = next(iter(raw["runs"]))
    with pytest.raises(PipelineError, match=f"no run named 'e99'. Known runs: .*{known}"):
        loaded.run("e99")


@pytest.mark.parametrize("hidden, widths", [({"layers": 3, "units": 7}, [7, 7, 7]), ([5, 4], [5, 4])])
def test_hidden_layers_as_a_shorthand_or_a_list(tmp_path, hidden, widths):
    assert load_edited(tmp_path, ("runs", "probe", "hidden"), hidden).run("probe").widths == widths


def test_seeds_are_the_runs_own_else_its_templates_else_the_defaults():
    loaded = params.load(REPO_PARAMS)
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    for group in params.RUN_GROUPS:
        for name, entry in (raw[group] or {}).items():
            template = raw["templates"][entry["template"]]
            expected = entry.get("seeds") or template.get("seeds") or raw["defaults"]["seeds"]
            assert loaded.seeds_of(name) == expected, name


def test_no_yaml_anchors_or_merge_keys():
    """Runs name their template: DVC's -S rewrite loses an edit to a key merged in with `<<:` (issue 28)."""
    text = REPO_PARAMS.read_text(encoding="utf-8")
    events = list(yaml.parse(text))
    assert not [e for e in events if isinstance(e, yaml.AliasEvent) or getattr(e, "anchor", None)]
    assert "<<" not in [e.value for e in events if isinstance(e, yaml.ScalarEvent)]
    loaded = params.load(REPO_PARAMS)
    assert not set(loaded.templates) & set(loaded.run_names())


@pytest.mark.parametrize("group, run, template", [("runs", "e08_momentum_30", None), ("runs", "baseline", "ten")])
def test_a_run_names_a_known_template(tmp_path, group, run, template):
    with pytest.raises(PipelineError) as info:
        load_edited(tmp_path, (group, run, "template"), template)
    assert str(info.value).startswith(f"params.yaml: {group}.{run}")
    assert "add `template: none`" in str(info.value) if template is None else "is not in `templates`" in str(info.value)


def test_a_template_names_no_template(tmp_path):
    with pytest.raises(PipelineError, match="templates.deep names a template; a template cannot name another"):
        load_edited(tmp_path, ("templates", "deep", "template"), "none")


@pytest.mark.parametrize("keys, value, expected", [
    (("runs", "probe", "optimizer"), {"name": "adam", "momentum": 0.9},
     "params.yaml: runs.probe.optimizer.momentum = 0.9: optimizer 'adam' ignores 'momentum' (it reads "
     "learning_rate, beta_1, beta_2); remove the key, or set optimizer.name to one that reads it."),
    (("runs", "probe", "optimizer"), {"name": "sgd", "rho": 0.8},
     "optimizer 'sgd' ignores 'rho' (it reads learning_rate, momentum, nesterov, "
      "weight_decay)"),
    (("runs", "probe", "optimizer"), {"name": "adam", "weight_decay": 0.01}, "optimizer 'adam' ignores 'weight_decay'"),
    (("runs", "probe", "schedule"), {"name": "plateau", "max_learning_rate": 0.1},
     "runs.probe.schedule.max_learning_rate = 0.1: schedule 'plateau' ignores 'max_learning_rate' (it reads "
     "factor, patience)"),
    # a key the template sets, under a run that switches the optimizer: named where it is set
    (("runs", "probe"), {"template": "probe_sgd", "optimizer": {"name": "adam"}},
     "templates.probe_sgd.optimizer.momentum = 0.9 (in runs.probe): optimizer 'adam' ignores"),
    (("optimizers", "adam", "rho"), 0.9, "optimizers.adam.rho = 0.9: optimizer 'adam' ignores 'rho'"),
])
def test_a_key_the_named_optimizer_or_schedule_ignores_is_refused(tmp_path, keys, value, expected):
    with pytest.raises(PipelineError) as info:
        load_edited(tmp_path, keys, value)
    assert expected in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_a_named_optimizer_gets_its_own_keys_only(tmp_path, name):
    """Naming an optimizer brings its table entry and the defaults' keys every optimizer reads (no SGD momentum
    on Adam); every real run's optimizer has exactly its table entry's keys."""
    raw = real_params()
    run = load_edited(tmp_path, ("runs", "probe", "optimizer"), {"name": name}).run("probe")
    assert run.optimizer.model_dump() == {**raw["optimizers"][name], "name": name,
                                          "learning_rate": raw["defaults"]["optimizer"]["learning_rate"]}
    loaded = params.load(REPO_PARAMS)
    for run in loaded.run_names():
        optimizer = loaded.run(run).optimizer
        assert set(optimizer.model_dump()) == {"name", "learning_rate", *raw["optimizers"][optimizer.name]}, run


def test_the_defaults_name_only_keys_every_optimizer_and_schedule_reads():
    """Else a run that names another optimizer (schedule) would be refused for a key it never set."""
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    for table, key in (("optimizers", "optimizer"), ("schedules", "schedule")):
        common = set.intersection(*(set(entry) for entry in raw[table].values()))
        assert set(raw["defaults"][key]) <= {"name", "learning_rate"} | common, key


def test_sgd_reads_a_weight_decay_other_optimizers_refuse(tmp_path):
    """docs/extending.md's worked technique, without training: SGD's decoupled weight decay is null in its
    table entry (Keras' default: none), a run may set it, and on an optimizer that does not read it (or at 0,
    a decay that does nothing) it is one clear error."""
    assert load_edited(tmp_path, ("runs", "probe", "optimizer"), {"name": "sgd"}).run("probe").optimizer.weight_decay \
        is None
    edited = load_edited(tmp_path, ("runs", "probe", "optimizer"), {"name": "sgd", "weight_decay": 0.0005})
    assert edited.run("probe").optimizer.weight_decay == 0.0005
    with pytest.raises(PipelineError, match=r"runs\.probe\.optimizer\.weight_decay = 0\.0005: optimizer "
                                            r"'rmsprop' ignores 'weight_decay'"):
        load_edited(tmp_path, ("runs", "probe", "optimizer"), {"name": "rmsprop", "weight_decay": 0.0005})
    with pytest.raises(PipelineError, match=r"'runs\.probe\.optimizer\.weight_decay' = 0\.0: Input should be "
                                            r"greater than 0"):
        load_edited(tmp_path, ("runs", "probe", "optimizer"), {"name": "sgd", "weight_decay": 0.0})


def test_dvcs_set_param_rewrite_changes_only_the_value_it_sets(tmp_path):
    """`dvc exp run -S` rewrites params.yaml (DVC's apply_overrides): the edit lands, every other value and
    every comment stays."""
    from dvc.utils.hydra import apply_overrides

    for override in (readme_override(), "++runs.e08_momentum.early_stopping.patience=10"):
        path, value = override.removeprefix("++").split("=")
        copy = tmp_path / "params.yaml"
        copy.write_text(REPO_PARAMS.read_text(encoding="utf-8"), encoding="utf-8")
        apply_overrides(str(copy), [override])
        expected = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
        *parents, last = path.split(".")
        functools.reduce(lambda d, k: d.setdefault(k, {}), parents, expected)[last] = yaml.safe_load(value)
        assert yaml.safe_load(copy.read_text()) == expected
        comments = lambda text: [line.strip() for line in text.splitlines() if line.strip().startswith("#")]  # noqa: E731
        assert comments(copy.read_text()) == comments(REPO_PARAMS.read_text(encoding="utf-8"))


def test_max_seeds_caps_every_run_own_lists_included(tmp_path):
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    uncapped = params.load(REPO_PARAMS)
    raw["limits"]["max_seeds"] = 2
    capped = write_params(tmp_path, raw)
    assert {run: capped.seeds_of(run) for run in capped.run_names()} == \
        {run: uncapped.seeds_of(run)[:2] for run in uncapped.run_names()}


def fields_with_defaults(model: type, prefix: str = "") -> list[str]:
    """Every field of a pydantic model tree that has a default (a value training would read untracked)."""
    found = []
    for name, field in model.model_fields.items():
        if not field.is_required():
            found.append(prefix + name)
        for arg in getattr(field.annotation, "__args__", ()) or (field.annotation,):
            if isinstance(arg, type) and issubclass(arg, params.Strict):
                found += fields_with_defaults(arg, f"{prefix}{name}.")
    return found


def test_every_value_training_reads_is_in_params_yaml():
    """No hidden defaults: every field of a run's configuration is required, so its value sits in
    params.yaml (defaults or the run's entry), which DVC tracks for exactly the stages that read it."""
    assert fields_with_defaults(params.RunConfig) == []
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    assert set(raw["defaults"]) == set(params.RunConfig.model_fields)
    for group in params.RUN_GROUPS:
        for entry in (raw[group] or {}).values():
            assert not {"label", "experiment"} & set(entry), "presentation belongs in ch11/report/claims.yaml"


def test_cifar10_is_opt_in(tmp_path):
    """CIFAR-10's runs wait in a template; a run on a dataset that `datasets` does not list is one clear error,
    and listing it enables them."""
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    waiting = raw["templates"]["cifar10_runs"]
    assert waiting
    raw["datasets"], raw["cifar_runs"] = ["fashion_mnist"], waiting
    with pytest.raises(PipelineError, match=r"run '\w+' is on cifar10, which `datasets` \(fashion_mnist\) does not list"):
        write_params(tmp_path, raw)
    raw["datasets"] = ["fashion_mnist", "cifar10"]
    enabled = write_params(tmp_path, raw)
    assert {run: enabled.dataset_of(run) for run in waiting} == dict.fromkeys(waiting, "cifar10")
