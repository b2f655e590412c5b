"""Search spaces as data: the shipped ones load, sampling is seeded, every mistake names itself."""
import json

import pytest

from netfab.config import load_config
from netfab.errors import ConfigError
from netfab.tune.search_space import SPACES_DIR, load_space
from netfab.tune.report import edge_warnings


def write_space(tmp_path, space) -> str:
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    return str(path)


def draws(space, count: int, seed: int = 0) -> list[dict]:
    """`count` values drawn by Optuna's seeded random sampler over the space's distributions."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.decode(study.ask(space.distributions()).params) for _ in range(count)]


@pytest.mark.parametrize("variant", ["deep_v1", "rnn_v1"])
def test_every_variant_ships_a_space_whose_draws_are_valid_configs(variant):
    space = load_space(variant)
    assert space.source == str(SPACES_DIR / f"{variant}.json")
    for values in draws(space, 20):
        effective = load_config(variant, environ=space.to_env(values))
        assert all(effective.sources[key] == "env" for key in values)


def test_each_key_maps_onto_its_optuna_distribution():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    distributions = load_space("deep_v1").distributions()
    assert distributions["learning_rate"] == FloatDistribution(0.0003, 0.03, log=True)
    assert distributions["dropout"] == FloatDistribution(0.0, 0.4)
    assert distributions["embedding_dim_max"] == IntDistribution(4, 32)
    assert distributions["batch_size"] == CategoricalDistribution([32, 64, 128, 256])
    # Optuna's choices are scalars: a list choice travels as the NET_ string fab train reads.
    assert distributions["hidden_units"] == CategoricalDistribution(["32", "64,32", "128,64", "256,128,64"])


def test_distributions_stay_in_their_ranges(tmp_path):
    space = load_space("deep_v1", write_space(tmp_path, {
        "rnn_units": {"int": [3, 5]}, "dropout": {"uniform": [0.1, 0.2]},
        "learning_rate": {"log_uniform": [0.0003, 0.03]},
        "hidden_units": {"choice": [[8], [16, 8]]}}))
    samples = draws(space, 60, seed=1)
    assert {s["rnn_units"] for s in samples} == {3, 4, 5}
    assert all(0.1 <= s["dropout"] <= 0.2 for s in samples)
    rates = [s["learning_rate"] for s in samples]
    assert 0.0003 <= min(rates) and max(rates) <= 0.03 and len(set(rates)) > 50
    assert sum(r < 0.003 for r in rates) > 15  # log scale: half the draws below the geometric middle
    assert {tuple(s["hidden_units"]) for s in samples} == {(8,), (16, 8)}
    assert space.to_env(samples[0])["NET_HIDDEN_UNITS"] in ("8", "16,8")


@pytest.mark.parametrize("space, message", [
    ({"learning_rat": [0.1]}, "unknown key 'learning_rat' in search space .* \\(did you mean 'learning_rate'\\?\\)"),
    ({"dropout": {"unifrom": [0, 0.2]}}, "'dropout' in search space .*: unknown distribution 'unifrom' \\(did you mean 'uniform'\\?\\)"),
    ({"dropout": {"uniform": [0.3, 0.1]}}, "'dropout' .* uniform range \\[0.3, 0.1\\] is empty or reversed"),
    ({"learning_rate": {"log_uniform": [0, 0.1]}}, "log_uniform range \\[0, 0.1\\] needs low > 0"),
    ({"batch_size": {"int": [8.5, 64]}}, "int range \\[8.5, 64\\] needs integer bounds"),
    ({"dropout": {"uniform": [0.1, 1.0]}}, "'dropout' .*: value 1.0 is not a valid config value: dropout = 1.0: must be in \\[0, 1\\)"),
    ({"rnn_cell": ["gru", "rnn"]}, "'rnn_cell' .*: value \"rnn\" is not a valid config value"),
    ({"hidden_units": [64, 32]}, "'hidden_units' .*: value 64 has the wrong shape"),
    ({"batch_size": {"choice": []}}, "choice needs a non-empty list"),
    ({}, "must be a non-empty JSON object"),
])
def test_bad_spaces_are_refused_naming_the_key_and_file(tmp_path, space, message):
    with pytest.raises(ConfigError, match=message):
        load_space("deep_v1", write_space(tmp_path, space))


def test_a_key_fixed_in_the_environment_cannot_also_be_searched(tmp_path):
    with pytest.raises(ConfigError, match="NET_DROPOUT is set in the environment and 'dropout'"):
        load_space("deep_v1", write_space(tmp_path, {"dropout": [0.1, 0.2]}), {"NET_DROPOUT": "0.3"})


def test_a_missing_space_names_the_shipped_ones(tmp_path):
    with pytest.raises(ConfigError, match="does not exist.*shipped spaces: deep_v1.json, rnn_v1.json"):
        load_space("deep_v1", tmp_path / "nope.json")


def test_a_best_value_at_the_edge_of_its_range_is_flagged(tmp_path):
    class Spec:  # only what edge_warnings reads
        space_file = "space.json"
        search_space = staticmethod(lambda: load_space("deep_v1", write_space(tmp_path, {
            "learning_rate": {"log_uniform": [0.001, 0.1]}, "batch_size": [32, 64, 128],
            "dropout": {"uniform": [0.0, 0.5]}})))

    best = {"values": {"learning_rate": 0.095, "batch_size": 64, "dropout": 0.25}}
    warnings = edge_warnings(Spec, best)
    assert len(warnings) == 1 and "best learning_rate = 0.095 sits at the high edge" in warnings[0]
    best["values"].update(learning_rate=0.01, batch_size=32)
    assert ["batch_size" in w and "low edge" in w for w in edge_warnings(Spec, best)] == [True]
