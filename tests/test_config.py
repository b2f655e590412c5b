"""The three config levels, their order, and every error a user can make with them."""
import dataclasses
import json

import pytest

import models
from netconfig import NetConfig
from netfab.config import load_config, parse_bool, read_variants
from netfab.errors import ConfigError
from tests.helpers import run_fab


def write_variants(tmp_path, variants: dict):
    path = tmp_path / "variant_config.json"
    path.write_text(json.dumps(variants))
    return path


def test_defaults_come_from_netconfig():
    effective = load_config("deep_v1", environ={})
    assert effective.config.batch_size == NetConfig().batch_size
    assert effective.sources["batch_size"] == "default"


def test_variant_overrides_default():
    effective = load_config("rnn_v1", environ={})
    assert effective.config.network == "rnn_v1"
    assert effective.config.learning_rate == read_variants()["rnn_v1"]["learning_rate"]
    assert effective.sources["learning_rate"] == "variant"
    assert effective.sources["dropout"] == "default"


def test_env_override_beats_variant():
    effective = load_config("rnn_v1", environ={"NET_LEARNING_RATE": "0.0123"})
    assert effective.config.learning_rate == 0.0123
    assert effective.sources["learning_rate"] == "env"


def test_env_lists_are_comma_separated():
    effective = load_config("deep_v1", environ={"NET_HIDDEN_UNITS": "16, 8,4",
                                                 "NET_NUMERIC_COLUMNS": "price,rating"})
    assert effective.config.hidden_units == (16, 8, 4)
    assert effective.config.numeric_columns == ("price", "rating")


def test_env_unrelated_variables_are_ignored():
    assert load_config("deep_v1", environ={"PATH": "/bin", "NETWORK": "x"}).config.network == "deep_v1"


def test_config_is_frozen():
    effective = load_config("deep_v1", environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        effective.config.epochs = 1


def test_unknown_variant_names_closest(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown variant 'rnn_v2' \(did you mean 'rnn_v1'\?\)"):
        load_config("rnn_v2", environ={})


@pytest.mark.parametrize("text, message", [
    ('{"mine": {"dropout": 0.1}, "mine": {"dropout": 0.2}}', "variant 'mine' is written twice"),
    ('{"mine": {"dropout": 0.1, "dropout": 0.2}}', "key 'dropout' is written twice in variant 'mine'"),
])
def test_a_key_written_twice_in_the_variant_file_is_refused(tmp_path, text, message):
    path = tmp_path / "variant_config.json"
    path.write_text(text)  # json.loads alone would keep the last one silently
    with pytest.raises(ConfigError, match=message) as error:
        load_config("mine", environ={}, variants_path=path)
    assert str(path) in str(error.value)


def test_unknown_key_in_variant_file_names_key_variant_and_file(tmp_path):
    path = write_variants(tmp_path, {"mine": {"learnin_rate": 0.1}})
    with pytest.raises(ConfigError) as error:
        load_config("mine", environ={}, variants_path=path)
    message = str(error.value)
    assert "'learnin_rate'" in message and "'mine'" in message and str(path) in message
    assert "did you mean 'learning_rate'" in message


def test_unknown_env_variable_names_closest():
    with pytest.raises(ConfigError, match=r"NET_LERNING_RATE \(did you mean 'NET_LEARNING_RATE'\?\)"):
        load_config("deep_v1", environ={"NET_LERNING_RATE": "0.1"})


@pytest.mark.parametrize("name, value, expected", [
    ("NET_EPOCHS", "ten", "expected int"),
    ("NET_LEARNING_RATE", "fast", "expected float"),
    ("NET_HIDDEN_UNITS", "64,wide", "expected a list of int"),
])
def test_env_wrong_type_names_key_value_and_type(name, value, expected):
    with pytest.raises(ConfigError) as error:
        load_config("deep_v1", environ={name: value})
    message = str(error.value)
    assert name[4:].lower() in message and repr(value) in message and expected in message


@pytest.mark.parametrize("key, value, expected", [
    ("epochs", "10", "expected int, received str"),
    ("epochs", True, "expected int, received bool"),
    ("hidden_units", 64, "expected a list of int"),
    ("categorical_columns", ["country", 3], "expected a list of str"),
])
def test_variant_wrong_type_names_key_value_and_type(tmp_path, key, value, expected):
    path = write_variants(tmp_path, {"mine": {key: value}})
    with pytest.raises(ConfigError, match=expected) as error:
        load_config("mine", environ={}, variants_path=path)
    assert key in str(error.value) and "'mine'" in str(error.value)


def test_int_is_accepted_where_float_is_expected(tmp_path):
    path = write_variants(tmp_path, {"mine": {"learning_rate": 1}})
    assert load_config("mine", environ={}, variants_path=path).config.learning_rate == 1.0


def test_rnn_without_text_columns_is_refused():
    with pytest.raises(ConfigError, match="NET_TEXT_COLUMNS.*'rnn_v1' reads a text column"):
        load_config("rnn_v1", environ={"NET_TEXT_COLUMNS": ""})


def test_deep_without_text_columns_is_fine():
    assert load_config("deep_v1", environ={"NET_TEXT_COLUMNS": ""}).config.text_columns == ()


def test_several_text_columns_are_a_comma_separated_list():
    config = load_config("deep_v1", environ={"NET_TEXT_COLUMNS": "title, host_note"}).config
    assert config.text_columns == ("title", "host_note")


@pytest.mark.parametrize("env, expected", [
    ({"NET_TASK": "ranking"}, "no such task.*binary, multiclass, multilabel, regression"),
    ({"NET_TASK": "multiclas"}, "did you mean 'multiclass'"),
    ({"NET_TOP_K": "0"}, "must be >= 1"),
    ({"NET_MULTILABEL_THRESHOLD": "1"}, "strictly between 0 and 1"),
])
def test_task_keys_are_checked(env, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config("deep_v1", environ=env)


@pytest.mark.parametrize("env, expected", [
    ({"NET_NETWORK": "cnn_v9"}, "no such architecture.*registered: deep_v1, rnn_v1"),
    ({"NET_TEST_FRACTION": "1.5"}, "strictly between 0 and 1"),
    ({"NET_DROPOUT": "1"}, r"in \[0, 1\)"),
    ({"NET_BATCH_SIZE": "0"}, "must be >= 1"),
    ({"NET_RNN_CELL": "transformer"}, "gru, lstm"),
    ({"NET_NUMERIC_COLUMNS": "price,booked"}, "'booked' is also in label_column"),
    ({"NET_CATEGORICAL_COLUMNS": "", "NET_NUMERIC_COLUMNS": "", "NET_TEXT_COLUMNS": ""},
     "no feature columns"),
])
def test_impossible_values_are_refused_with_their_source(env, expected):
    with pytest.raises(ConfigError, match=expected) as error:
        load_config("deep_v1", environ=env)
    assert "environment variable NET_" in str(error.value)


def test_allowed_networks_come_from_the_registry():
    for name in models.REGISTRY:
        assert load_config("deep_v1", environ={"NET_NETWORK": name}).config.network == name


def test_fingerprint_follows_values():
    base = load_config("deep_v1", environ={})
    assert base.fingerprint() == load_config("deep_v1", environ={}).fingerprint()
    assert base.fingerprint() != load_config("deep_v1", environ={"NET_SEED": "1"}).fingerprint()


def test_fab_config_prints_each_value_with_its_source():
    result = run_fab("config", "--variant=rnn_v1", env={"NET_BATCH_SIZE": "64"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert lines["batch_size"][1:] == ["64", "env"]
    assert lines["network"][1:] == ['"rnn_v1"', "variant"]
    assert lines["seed"][-1] == "default"


def test_fab_config_error_is_one_line_without_traceback():
    result = run_fab("config", "--variant=deep_v2")
    assert result.returncode == 1
    assert "error: unknown variant 'deep_v2'" in result.stderr
    assert "Traceback" not in result.stderr


def test_fab_variants_lists_variants_and_their_changes():
    result = run_fab("variants")
    assert result.returncode == 0, result.stderr
    assert "rnn_v1" in result.stdout and "network=rnn_v1" in result.stdout
    assert all(name in result.stdout for name in models.REGISTRY)


@pytest.mark.parametrize("text, expected", [
    ("1", True), ("true", True), ("Yes", True), ("ON", True),
    ("0", False), ("false", False), ("No", False), ("off", False),
])
def test_yes_no_words_parse_the_same_everywhere(text, expected):
    assert parse_bool(text) is expected


def test_other_words_are_not_yes_or_no():
    with pytest.raises(ValueError, match="'maybe' is not a yes/no value: use one of 1, true, yes, on"):
        parse_bool("maybe")
