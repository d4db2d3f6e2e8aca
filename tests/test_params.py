"""Validation of params.yaml (arena_pref.params): the repository's file, and mutated copies of it."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from arena_pref.params import Params, ParamsError, load_params, parse_params

PARAMS_YAML = Path(__file__).resolve().parent.parent / "params.yaml"


@pytest.fixture(scope="module")
def raw_params() -> dict:
    with open(PARAMS_YAML, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _with(raw: dict, key: str, value) -> dict:
    """A deep copy of `raw` with dotted `key` set to `value`."""
    out = copy.deepcopy(raw)
    section, name = key.split(".")
    out[section][name] = value
    return out


# --------------------------------------------------------------------------------- the real params.yaml

def test_repository_params_yaml_validates():
    params = load_params(PARAMS_YAML)
    assert isinstance(params, Params)
    assert params.train.lr == 2.0e-5 and isinstance(params.train.lr, float)
    assert params.train.head_lr == 2.0e-4
    assert params.featurize.swap_train is True
    assert params.model.head in ("symmetric", "concat")
    assert 0 <= params.train.fold < params.prepare.n_folds


def test_every_yaml_key_reaches_params(raw_params):
    params = load_params(PARAMS_YAML)
    for section, values in raw_params.items():
        for key, value in values.items():
            assert getattr(getattr(params, section), key) == value, f"{section}.{key}"


def test_load_params_default_path_is_cwd(monkeypatch):
    monkeypatch.chdir(PARAMS_YAML.parent)
    assert load_params() == load_params(PARAMS_YAML)


def test_params_are_frozen():
    params = load_params(PARAMS_YAML)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.train.lr = 1.0


# ---------------------------------------------------------------------------------- keys and sections

def test_unknown_key(raw_params):
    raw = _with(raw_params, "train.lr_typo", 1.0e-5)
    with pytest.raises(ParamsError, match=r"^params.yaml: section 'train' has unknown key\(s\) lr_typo$"):
        parse_params(raw)


def test_missing_key(raw_params):
    raw = copy.deepcopy(raw_params)
    del raw["train"]["lr"]
    with pytest.raises(ParamsError, match=r"^params.yaml: section 'train' is missing lr$"):
        parse_params(raw)


def test_missing_keys_listed_sorted(raw_params):
    raw = copy.deepcopy(raw_params)
    del raw["evaluate"]["tta"], raw["evaluate"]["batch_size"]
    with pytest.raises(ParamsError, match=r"section 'evaluate' is missing batch_size, tta$"):
        parse_params(raw)


def test_unknown_section(raw_params):
    raw = copy.deepcopy(raw_params) | {"trian": {"lr": 1.0}}
    with pytest.raises(ParamsError, match=r"^params.yaml: unknown section\(s\) trian$"):
        parse_params(raw)


def test_missing_section(raw_params):
    raw = copy.deepcopy(raw_params)
    del raw["predict"]
    with pytest.raises(ParamsError, match=r"^params.yaml: missing section 'predict'$"):
        parse_params(raw)


def test_section_not_a_mapping(raw_params):
    raw = copy.deepcopy(raw_params)
    raw["model"] = "microsoft/deberta-v3-xsmall"
    with pytest.raises(ParamsError, match=r"section 'model' must be a mapping, got str"):
        parse_params(raw)


@pytest.mark.parametrize("content", ["", "- a\n- b\n"])
def test_file_not_a_mapping(tmp_path, content):
    path = tmp_path / "params.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ParamsError, match="params.yaml must be a mapping of sections"):
        load_params(path)


# ----------------------------------------------------------------------------------------------- types

def test_float_written_without_dot_is_read_as_the_number(tmp_path):
    # PyYAML reads `2e-5` (no dot) as a string; `dvc exp run -S train.lr=...` writes that form (1e-05).
    text = PARAMS_YAML.read_text(encoding="utf-8")
    changed, n = re.subn(r"(?m)^  lr: 2\.0e-5$", "  lr: 2e-5", text)
    changed, m = re.subn(r"(?m)^  head_lr: 2\.0e-4$", "  head_lr: 1e-04", changed)
    assert n == m == 1
    raw = yaml.safe_load(changed)
    assert (raw["train"]["lr"], raw["train"]["head_lr"]) == ("2e-5", "1e-04")  # the YAML quirk
    path = tmp_path / "params.yaml"
    path.write_text(changed, encoding="utf-8")
    params = load_params(path)
    assert params.train.lr == 2.0e-5 and isinstance(params.train.lr, float)
    assert params.train.head_lr == 1.0e-4 and isinstance(params.train.head_lr, float)


@pytest.mark.parametrize("value", ["fast", "", "2.0e-5x"])
def test_non_numeric_string_for_float_refused(raw_params, value):
    with pytest.raises(ParamsError) as err:
        parse_params(_with(raw_params, "train.lr", value))
    assert str(err.value) == f"params.yaml: train.lr must be a finite number, got {value!r}"


def test_numeric_string_still_range_checked(raw_params):
    with pytest.raises(ParamsError, match=r"^params.yaml: train.warmup_ratio must be in \[0, 1\)$"):
        parse_params(_with(raw_params, "train.warmup_ratio", "1e0"))


def test_integer_accepted_for_float(raw_params):
    params = parse_params(_with(raw_params, "train.max_grad_norm", 1))
    assert params.train.max_grad_norm == 1.0 and isinstance(params.train.max_grad_norm, float)


@pytest.mark.parametrize("key, value, message", [
    ("train.lr", True, "train.lr must be a finite number, got True"),
    ("train.lr", None, "train.lr must be a finite number, got None"),
    ("train.epochs", 2.0, "train.epochs must be an integer, got 2.0"),
    ("train.epochs", "2", "train.epochs must be an integer, got '2'"),
    ("train.epochs", True, "train.epochs must be an integer, got True"),
    ("featurize.swap_train", 1, "featurize.swap_train must be true or false, got 1"),
    ("featurize.swap_train", "yes", "featurize.swap_train must be true or false, got 'yes'"),
    ("model.backbone", "", "model.backbone must be a non-empty string, got ''"),
    ("model.backbone", 3, "model.backbone must be a non-empty string, got 3"),
    ("data.test_csv", None, "data.test_csv must be a non-empty string, got None"),
])
def test_wrong_types(raw_params, key, value, message):
    with pytest.raises(ParamsError) as err:
        parse_params(_with(raw_params, key, value))
    assert str(err.value) == f"params.yaml: {message}"


# ----------------------------------------------------------------------------------------------- ranges

@pytest.mark.parametrize("key, value, message", [
    ("prepare.n_folds", 1, "prepare.n_folds must be >= 2"),
    ("featurize.max_tokens_per_side", 7, "featurize.max_tokens_per_side must be >= 8"),
    ("featurize.prompt_share", 1.5, "featurize.prompt_share must be in [0, 1]"),
    ("featurize.prompt_share", -0.1, "featurize.prompt_share must be in [0, 1]"),
    ("featurize.head_share", 1.01, "featurize.head_share must be in [0, 1]"),
    ("featurize.head_share", -0.5, "featurize.head_share must be in [0, 1]"),
    ("model.head", "mean", "model.head must be one of ('symmetric', 'concat')"),
    ("model.dropout", 1.0, "model.dropout must be in [0, 1)"),
    ("model.dropout", -0.1, "model.dropout must be in [0, 1)"),
    ("model.dropout_samples", 0, "model.dropout_samples must be >= 1"),
    ("train.fold", 5, "train.fold must be -1 (all folds) or in [0, prepare.n_folds)"),
    ("train.fold", -2, "train.fold must be -1 (all folds) or in [0, prepare.n_folds)"),
    ("train.epochs", 0, "train.epochs must be >= 1"),
    ("train.batch_size", 0, "train.batch_size must be >= 1"),
    ("train.grad_accum_steps", 0, "train.grad_accum_steps must be >= 1"),
    ("train.lr", 0.0, "train.lr and train.head_lr must be > 0"),
    ("train.head_lr", -1.0e-4, "train.lr and train.head_lr must be > 0"),
    ("train.weight_decay", -0.01, "train.weight_decay must be >= 0"),
    ("train.layer_lr_decay", 0.0, "train.layer_lr_decay must be in (0, 1] (1 = the same rate for every layer)"),
    ("train.layer_lr_decay", 1.1, "train.layer_lr_decay must be in (0, 1] (1 = the same rate for every layer)"),
    ("train.ema_decay", 1.0, "train.ema_decay must be in [0, 1) (0 = no weight averaging)"),
    ("train.ema_decay", -0.5, "train.ema_decay must be in [0, 1) (0 = no weight averaging)"),
    ("train.freeze_layers", -1, "train.freeze_layers must be >= 0 (0 = the whole backbone learns)"),
    ("model.pooling", "max", "model.pooling must be one of ('mean', 'cls', 'attention')"),
    ("train.soft_target_weight", 1.0, "train.soft_target_weight must be in [0, 1) (0 = the human labels alone)"),
    ("train.soft_target_weight", -0.1, "train.soft_target_weight must be in [0, 1) (0 = the human labels alone)"),
    ("train.warmup_ratio", 1.0, "train.warmup_ratio must be in [0, 1)"),
    ("train.warmup_ratio", -0.1, "train.warmup_ratio must be in [0, 1)"),
    ("train.max_grad_norm", 0.0, "train.max_grad_norm must be > 0"),
    ("train.precision", "fp8", "train.precision must be one of ('auto', 'fp16', 'bf16', 'fp32')"),
    ("train.eval_every_steps", -1, "train.eval_every_steps must be >= 0 (0 = epoch ends only)"),
    ("train.device", "tpu", "train.device must be one of ('auto', 'cpu', 'cuda')"),
    ("evaluate.batch_size", 0, "batch sizes must be >= 1"),
    ("predict.batch_size", 0, "batch sizes must be >= 1"),
    ("evaluate.calibration_bins", 1, "evaluate.calibration_bins must be >= 2"),
    ("gbdt.learning_rate", 0.0, "gbdt.learning_rate must be > 0, gbdt.max_iter >= 1"),
    ("gbdt.max_iter", 0, "gbdt.learning_rate must be > 0, gbdt.max_iter >= 1"),
    ("gbdt.max_leaf_nodes", 1, "gbdt.max_leaf_nodes must be >= 2, gbdt.min_samples_leaf >= 1"),
    ("gbdt.min_samples_leaf", 0, "gbdt.max_leaf_nodes must be >= 2, gbdt.min_samples_leaf >= 1"),
    ("gbdt.l2_regularization", -1.0, "gbdt.l2_regularization must be >= 0"),
    ("tfidf.analyzer", "bpe", "tfidf.analyzer must be one of ('char_wb', 'char', 'word')"),
    ("tfidf.ngram_min", 0, "tfidf.ngram_min and tfidf.ngram_max: need 1 <= min <= max"),
    ("tfidf.ngram_max", 1, "tfidf.ngram_min and tfidf.ngram_max: need 1 <= min <= max"),
    ("tfidf.min_df", 0, "tfidf.min_df and tfidf.max_features must be >= 1"),
    ("tfidf.max_features", 0, "tfidf.min_df and tfidf.max_features must be >= 1"),
    ("tfidf.C", 0.0, "tfidf.C must be > 0"),
])
def test_out_of_range(raw_params, key, value, message):
    with pytest.raises(ParamsError) as err:
        parse_params(_with(raw_params, key, value))
    assert str(err.value) == f"params.yaml: {message}"


def test_fold_checked_against_n_folds(raw_params):
    raw = _with(raw_params, "prepare.n_folds", 3)
    raw["train"]["fold"] = 3
    with pytest.raises(ParamsError, match=r"train.fold must be -1 \(all folds\) or in \[0, prepare.n_folds\)"):
        parse_params(raw)
    raw["train"]["fold"] = 2
    assert parse_params(raw).train.fold == 2
    raw["train"]["fold"] = -1
    assert parse_params(raw).train.fold == -1


def test_extra_train_csvs_is_a_list_of_paths(raw_params):
    assert parse_params(_with(raw_params, "data.extra_train_csvs", None)).data.extra_train_csvs == []
    assert parse_params(_with(raw_params, "data.extra_train_csvs", ["a.csv"])).data.extra_train_csvs == ["a.csv"]
    with pytest.raises(ParamsError, match=r"data.extra_train_csvs must be a list"):
        parse_params(_with(raw_params, "data.extra_train_csvs", "a.csv"))
    with pytest.raises(ParamsError, match=r"data.extra_train_csvs\[0\] must be a non-empty string"):
        parse_params(_with(raw_params, "data.extra_train_csvs", [3]))


@pytest.mark.parametrize("key, value", [
    ("prepare.n_folds", 2),
    ("featurize.max_tokens_per_side", 8),
    ("featurize.prompt_share", 0.0),
    ("featurize.prompt_share", 1.0),
    ("featurize.head_share", 0.0),
    ("featurize.head_share", 1.0),
    ("model.head", "concat"),
    ("model.pooling", "attention"),
    ("model.dropout", 0.0),
    ("model.dropout_samples", 5),
    ("train.fold", 4),
    ("train.weight_decay", 0.0),
    ("train.warmup_ratio", 0.0),
    ("train.layer_lr_decay", 1.0),
    ("train.ema_decay", 0.0),
    ("train.freeze_layers", 2),
    ("train.soft_target_weight", 0.0),
    ("train.soft_target_weight", 0.99),
    ("train.precision", "bf16"),
    ("train.eval_every_steps", 0),
    ("train.device", "cpu"),
    ("evaluate.calibration_bins", 2),
    ("data.train_csv", "data/raw/train.csv"),
    ("gbdt.max_iter", 1),
    ("gbdt.max_leaf_nodes", 2),
    ("gbdt.min_samples_leaf", 1),
    ("gbdt.l2_regularization", 0.0),
    ("tfidf.analyzer", "word"),
    ("tfidf.ngram_max", 2),
    ("tfidf.min_df", 1),
])
def test_boundary_values_accepted(raw_params, key, value):
    raw = _with(raw_params, key, value)
    if key == "prepare.n_folds":
        raw["train"]["fold"] = 0
    section, name = key.split(".")
    assert getattr(getattr(parse_params(raw), section), name) == value


def test_the_priors_need_what_they_read(raw_params):
    def message(**sections) -> str:
        raw = copy.deepcopy(raw_params)
        for section, values in sections.items():
            raw[section].update(values)
        with pytest.raises(ParamsError) as err:
            parse_params(raw)
        return str(err.value)

    assert message(model={"side_stats": False}) == "params.yaml: model.stats_prior needs model.side_stats: true"
    assert (message(model={"stats_prior": False, "teacher_prior": True})
            == "params.yaml: model.teacher_prior needs model.stats_prior: true")
    assert message(model={"teacher_prior": True}, data={"extra_train_csvs": ["more.csv"]}) == (
        "params.yaml: model.teacher_prior cannot train on data.extra_train_csvs: extra rows have no out-of-fold "
        "teacher probabilities")
    assert parse_params(_with(raw_params, "model.teacher_prior", True)).model.teacher_prior


def test_mutations_do_not_leak_into_fixture(raw_params):
    # The fixture is shared by the module's tests: _with must copy.
    assert raw_params["train"]["lr"] == 2.0e-5
    assert "lr_typo" not in raw_params["train"]
    assert parse_params(raw_params) == load_params(PARAMS_YAML)


@pytest.mark.parametrize("value", [float("inf"), "inf", float("nan"), "-inf"])
def test_infinite_or_nan_float_refused(raw_params, value):
    with pytest.raises(ParamsError, match="train.lr must be a finite number"):
        parse_params(_with(raw_params, "train.lr", value))


def documented_llm_keys() -> set[str]:
    """Keys of the llm params table in docs/llm.md (its first column, comma-separated names)."""
    table = (PARAMS_YAML.parent / "docs/llm.md").read_text().split("## Params (`llm` section")[1].split("\n\n")[0]
    return {key.strip() for line in table.splitlines()[3:] for key in line.split("|")[1].split(",")}


def test_every_param_is_documented():
    raw = yaml.safe_load(PARAMS_YAML.read_text())
    params_doc = (PARAMS_YAML.parent / "docs/params.md").read_text()
    missing = [f"{section}.{key}" for section, values in raw.items() if section != "llm" for key in values
               if f"`{section}.{key}`" not in params_doc]
    missing += [f"llm.{key}" for key in set(raw["llm"]) - documented_llm_keys()]
    assert not missing, f"params.yaml keys without a row in docs/params.md or docs/llm.md: {missing}"
