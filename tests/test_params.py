"""``ch11.params.load`` on copies of the real params.yaml: bad edits are one clear error, good ones merge."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from ch11 import params
from ch11.errors import PipelineError
from tests.helpers import PROJECT_ROOT, readme_override

REPO_PARAMS = PROJECT_ROOT / "params.yaml"


def load_edited(tmp_path: Path, keys: tuple[str, ...], value) -> params.Params:
    """Load a copy of params.yaml with ``value`` set at the key path ``keys``."""
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    *parents, last = keys
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return params.load(path)


@pytest.mark.parametrize("keys, value, expected", [
    # A typo in `defaults` reaches every run; it is reported at the first run that inherits it.
    (("defaults", "epochz"), 10,
     "unknown key 'defaults.epochz' (value 10); remove it or fix its spelling"),
    (("runs", "selu", "optimizer", "learning_rate"), "fast",
     "'runs.selu.optimizer.learning_rate' = 'fast': Input should be a valid number"),
    (("download", "retries"), -1, "'download.retries' = -1: Input should be greater than or equal to 0"),
    (("download", "backoff_s"), -0.5,
     "'download.backoff_s' = -0.5: Input should be greater than or equal to 0"),
    (("download", "cifar10", "files", "cifar-10-python.tar.gz", "hash_of"), "gzip",
     "'download.cifar10.files.cifar-10-python.tar.gz.hash_of' = 'gzip': "
     "Input should be 'decompressed' or 'file'"),
    (("runs", "e08_adam", "optimizer", "name"), "adamm",
     "'runs.e08_adam.optimizer.name' = 'adamm': Input should be 'sgd', 'adagrad', 'rmsprop', 'adam', "
     "'adamax', 'nadam' or 'adamw'"),
    (("runs", "e04_gelu", "activation"), "gelux",
     "'runs.e04_gelu.activation' = 'gelux': Input should be 'sigmoid', 'tanh', 'relu', 'leaky_relu', "
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


def test_a_run_is_defaults_deep_merged_with_its_own_entry():
    loaded = params.load(REPO_PARAMS)
    selu = loaded.run("selu")
    assert (selu.activation, selu.initializer, selu.input_scaling) == ("selu", "lecun_normal", "standardize")
    assert (selu.epochs, selu.batch_size, selu.widths, selu.backend) == (30, 32, [300, 200, 100], "tensorflow")
    nesterov = loaded.run("e08_nesterov").optimizer  # nested dicts merge key by key
    assert (nesterov.name, nesterov.learning_rate, nesterov.momentum, nesterov.nesterov) == \
        ("sgd", 0.01, 0.9, True)
    assert loaded.dataset_of("e07_b_transfer") == "fashion_mnist"
    assert loaded.download.cifar10.files["cifar-10-python.tar.gz"].hash_of == "file"
    assert loaded.download.fashion_mnist.files["train-images-idx3-ubyte.gz"].hash_of == "decompressed"
    with pytest.raises(PipelineError, match="no run named 'e99'. Known runs: .*baseline"):
        loaded.run("e99")


def test_shorthand_widths_templates_and_per_run_seeds():
    loaded = params.load(REPO_PARAMS)
    deep = loaded.run("x08_onecycle")  # template deep_onecycle, its own 1cycle schedule
    assert deep.widths == [100] * 20 and deep.activation == "selu" and deep.schedule.name == "onecycle"
    assert deep.optimizer.momentum == 0.0  # the book's plain SGD
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    for group in ("runs", "transfer_runs"):   # seeds: the run's own, else its template's, else the defaults'
        for name, entry in raw[group].items():
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
    (("runs", "e08_adam", "optimizer", "momentum"), 0.9,
     "params.yaml: runs.e08_adam.optimizer.momentum = 0.9: optimizer 'adam' ignores 'momentum' (it reads "
     "learning_rate, beta_1, beta_2); remove the key, or set optimizer.name to one that reads it."),
    (("runs", "e08_momentum", "optimizer", "rho"), 0.8, "optimizer 'sgd' ignores 'rho' (it reads learning_rate, "
                                                        "momentum, nesterov, weight_decay)"),
    (("runs", "e08_adam", "optimizer", "weight_decay"), 0.01, "optimizer 'adam' ignores 'weight_decay'"),
    (("runs", "e09_plateau", "schedule", "max_learning_rate"), 0.1,
     "runs.e09_plateau.schedule.max_learning_rate = 0.1: schedule 'plateau' ignores 'max_learning_rate' (it reads "
     "factor, patience)"),
    # a key the template sets, under a run that switches the optimizer: named where it is set
    (("runs", "e13_production", "optimizer"), {"name": "adam"},
     "templates.production.optimizer.momentum = 0.9 (in runs.e13_production): optimizer 'adam' ignores"),
    (("optimizers", "adam", "rho"), 0.9, "optimizers.adam.rho = 0.9: optimizer 'adam' ignores 'rho'"),
])
def test_a_key_the_named_optimizer_or_schedule_ignores_is_refused(tmp_path, keys, value, expected):
    with pytest.raises(PipelineError) as info:
        load_edited(tmp_path, keys, value)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_each_optimizer_gets_its_own_keys_only():
    """A run's optimizer is its table entry under the run's keys: exactly the keys its table entry lists (naming
    Adam brings no SGD momentum), a run's own values over the entry's."""
    loaded = params.load(REPO_PARAMS)
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    for name in loaded.run_names():
        optimizer = loaded.run(name).optimizer
        assert set(optimizer.model_dump()) == {"name", "learning_rate", *raw["optimizers"][optimizer.name]}
    assert set(raw["defaults"]["optimizer"]) == {"name", "learning_rate"} and set(raw["defaults"]["schedule"]) == {"name"}
    lr0, own = raw["defaults"]["optimizer"]["learning_rate"], raw["runs"]["e08_momentum"]["optimizer"]
    assert loaded.run("e08_momentum").optimizer.model_dump() == {
        "name": "sgd", "learning_rate": lr0, **raw["optimizers"]["sgd"], **own}


def test_sgd_reads_a_weight_decay_other_optimizers_refuse(tmp_path):
    """docs/extending.md's worked technique, without training: SGD's decoupled weight decay is null in its
    table entry (Keras' default: none), a run may set it, and on an optimizer that does not read it (or at 0,
    a decay that does nothing) it is one clear error."""
    assert params.load(REPO_PARAMS).run("baseline_es").optimizer.weight_decay is None
    edited = load_edited(tmp_path, ("runs", "baseline_es", "optimizer", "weight_decay"), 0.0005)
    assert edited.run("baseline_es").optimizer.weight_decay == 0.0005
    with pytest.raises(PipelineError, match=r"runs\.e08_rmsprop\.optimizer\.weight_decay = 0\.0005: optimizer "
                                            r"'rmsprop' ignores 'weight_decay'"):
        load_edited(tmp_path, ("runs", "e08_rmsprop", "optimizer", "weight_decay"), 0.0005)
    with pytest.raises(PipelineError, match=r"'runs\.baseline_es\.optimizer\.weight_decay' = 0\.0: Input should be "
                                            r"greater than 0"):
        load_edited(tmp_path, ("runs", "baseline_es", "optimizer", "weight_decay"), 0.0)


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
    raw["limits"]["max_seeds"] = 2
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    capped = params.load(path)
    assert capped.seeds_of("baseline") == capped.seeds_of("baseline_es") == [1, 2]
    assert capped.seeds_of("x08_onecycle") == [1, 2]


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
    for group in ("runs", "transfer_runs", "cifar_runs"):
        for entry in raw[group].values():
            assert not {"label", "experiment"} & set(entry), "presentation belongs in ch11/report/claims.yaml"


def test_cifar10_is_opt_in(tmp_path):
    """By default the pipeline runs on Fashion-MNIST only; CIFAR-10's runs wait in a template, and a run on a
    dataset that `datasets` does not list is one clear error."""
    loaded = params.load(REPO_PARAMS)
    assert loaded.datasets == ["fashion_mnist"] and loaded.cifar_runs == {}
    assert "e14_cifar_mlp" in loaded.templates["cifar10_runs"]
    raw = yaml.safe_load(REPO_PARAMS.read_text(encoding="utf-8"))
    raw["cifar_runs"] = raw["templates"]["cifar10_runs"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PipelineError, match=r"run '\w+' is on cifar10, which `datasets` \(fashion_mnist\) does not list"):
        params.load(path)
    raw["datasets"] = ["fashion_mnist", "cifar10"]
    path.write_text(yaml.safe_dump(raw))
    enabled = params.load(path)
    assert enabled.dataset_of("cx08_onecycle") == "cifar10" and enabled.run("cx08_onecycle").optimizer.momentum == 0
