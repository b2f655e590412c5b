"""Merge the three config levels, validate once, freeze, and remember where each value came from.

    from netfab.config import load_config
    effective = load_config("rnn_v1")           # defaults <- variant_config.json <- NET_* env
    effective.config.learning_rate, effective.sources["learning_rate"]   # 0.004, 'variant'

Steps, in order: (1) NetConfig defaults, (2) the variant's deltas, (3) NET_<KEY> variables,
(4) value checks that need the whole config, (5) freeze. Any mistake is a ConfigError that
names the key, the value, where it came from and the closest valid name.
"""
import dataclasses
import hashlib
import json
import os
import typing
from pathlib import Path

import netconfig
import models
from netconfig import NetConfig
from netfab.environment import PROJECT_ROOT
from netfab.errors import ConfigError, closest
from netfab.tasks import TASKS

VARIANTS_PATH = PROJECT_ROOT / "variant_config.json"
ENV_PREFIX = "NET_"
FIELDS = {f.name: f for f in dataclasses.fields(NetConfig)}
TYPES = typing.get_type_hints(NetConfig)
RNN_CELLS = ("gru", "lstm")
EXPORT_COMPRESSIONS = ("none", "gzip")
SPLIT_METHODS = ("random", "by_column")


@dataclasses.dataclass(frozen=True)
class EffectiveConfig:
    """The merged, validated config of one variant, with the source of every value."""

    variant: str
    config: NetConfig
    sources: dict[str, str]  # key -> "default" | "variant" | "env"

    def to_dict(self) -> dict:
        values = {key: _jsonable(getattr(self.config, key)) for key in FIELDS}
        return {"variant": self.variant, "values": values, "sources": dict(self.sources)}

    def fingerprint(self) -> str:
        """A short hash of the values: same variant and values, same fingerprint."""
        payload = json.dumps(self.to_dict()["values"], sort_keys=True) + self.variant
        return hashlib.sha256(payload.encode()).hexdigest()[:10]

    def describe(self) -> str:
        """The table `fab config` prints: key, value, source."""
        width = max(map(len, FIELDS))
        lines = [f"variant: {self.variant}"]
        for key in FIELDS:
            value = json.dumps(_jsonable(getattr(self.config, key)))
            lines.append(f"  {key:<{width}}  {value:<40}  {self.sources[key]}")
        return "\n".join(lines)


def column_roles(config) -> dict[str, str]:
    """Each column the config reads -> the config key that names it: the features, the weight, then
    the label (the id column is carried beside predictions, never read as a feature)."""
    roles = {column: "categorical_columns" for column in config.categorical_columns}
    roles.update({column: "list_columns" for column in config.list_columns})
    roles.update({column: "numeric_columns" for column in config.numeric_columns})
    roles.update({column: "text_columns" for column in config.text_columns})
    if config.weight_column:
        roles[config.weight_column] = "weight_column"
    if config.split == "by_column" and config.split_column:
        roles[config.split_column] = "split_column"
    roles[config.label_column] = "label_column"
    return roles


def config_from_values(values: dict) -> NetConfig:
    """The NetConfig a model zip was trained with, from its config.json's `values` (JSON lists
    back to tuples; keys this netconfig.py no longer has are left out)."""
    return NetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in FIELDS})


def env_overrides(environ=None) -> dict[str, str]:
    """The NET_* variables of `environ`: the third config level, as given (checked by load_config)."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in environ.items() if name.startswith(ENV_PREFIX)}


def read_variants(path: Path = VARIANTS_PATH) -> dict[str, dict]:
    """variant_config.json as {variant: {key: value}}, checked for shape and key names."""
    try:
        variants = json.loads(Path(path).read_text(), object_pairs_hook=_JsonObject)
    except FileNotFoundError:
        raise ConfigError(f"variant file {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise ConfigError(f'{path} must map each variant name to an object of overrides, '
                          f'e.g. {{"deep_v1": {{"learning_rate": 0.001}}}}')
    if variants.repeated:
        raise ConfigError(f"variant {variants.repeated[0]!r} is written twice in {path}; JSON would keep "
                          f"only the last one: merge the two into one entry")
    for name, deltas in variants.items():
        if deltas.repeated:
            raise ConfigError(f"key {deltas.repeated[0]!r} is written twice in variant {name!r} of {path}; "
                              f"JSON would keep only the last value: keep one")
        for key in deltas:
            if key not in FIELDS:
                raise ConfigError(f"unknown key {key!r} in variant {name!r} of {path}"
                                  f"{closest(key, FIELDS)}; valid keys are the fields of NetConfig "
                                  f"in netconfig.py")
    return variants


class _JsonObject(dict):
    """A JSON object that remembers the keys written twice in it (json keeps the last silently)."""

    def __init__(self, pairs):
        super().__init__()
        self.repeated = []
        for key, value in pairs:
            if key in self:
                self.repeated.append(key)
            self[key] = value


def load_config(variant: str = netconfig.DEFAULT_VARIANT, environ=None,
                variants_path: Path = VARIANTS_PATH) -> EffectiveConfig:
    """The effective config of `variant`: defaults <- variant deltas <- NET_* variables."""
    environ = os.environ if environ is None else environ
    variants = read_variants(variants_path)
    if variant not in variants:
        raise ConfigError(f"unknown variant {variant!r}{closest(variant, variants)}; "
                          f"variants in {variants_path}: {', '.join(variants)}")

    # (1) defaults
    values = {key: getattr(NetConfig(), key) for key in FIELDS}
    sources = {key: "default" for key in FIELDS}
    # (2) the variant's deltas
    for key, raw in variants[variant].items():
        where = f"variant {variant!r} in {variants_path}"
        values[key], sources[key] = _from_json(key, raw, where), "variant"
    # (3) one-run overrides from the environment
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key not in FIELDS:
            valid = [ENV_PREFIX + k.upper() for k in FIELDS]
            raise ConfigError(f"unknown environment variable {name}{closest(name, valid)}; "
                              f"NET_<KEY> must name a NetConfig key (unset it otherwise)")
        values[key], sources[key] = _from_env(key, raw, name), "env"

    # (4) checks across keys, (5) freeze
    config = NetConfig(**values)
    _check(config, sources, variant)
    return EffectiveConfig(variant, config, sources)


def _from_json(key: str, raw, where: str):
    expected = TYPES[key]
    if typing.get_origin(expected) is tuple:
        item = typing.get_args(expected)[0]
        if isinstance(raw, list) and all(_is_a(v, item) for v in raw):
            return tuple(raw)
    elif _is_a(raw, expected):
        return expected(raw)
    raise ConfigError(f"{key} = {raw!r} from {where}: expected {_type_name(expected)}, "
                      f"received {type(raw).__name__}")


def _from_env(key: str, raw: str, name: str):
    expected = TYPES[key]
    try:
        if typing.get_origin(expected) is tuple:
            item = typing.get_args(expected)[0]
            return tuple(_parse(item, part.strip()) for part in raw.split(",") if part.strip())
        return _parse(expected, raw.strip() if expected is not str else raw)
    except ValueError:
        raise ConfigError(f"{key} = {raw!r} from environment variable {name}: expected "
                          f"{_type_name(expected)}") from None


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(text: str) -> bool:
    """A yes/no written as text (a NET_ variable, a query parameter); ValueError for anything else."""
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{text!r} is not a yes/no value: use one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")


def _parse(kind, text: str):
    return parse_bool(text) if kind is bool else kind(text)


def _is_a(value, kind) -> bool:
    if isinstance(value, bool):  # JSON true is not the integer 1
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _type_name(kind) -> str:
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0].__name__
        return f"a list of {item} (JSON list, or comma-separated in NET_ variables)"
    return kind.__name__


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _check(config: NetConfig, sources: dict[str, str], variant: str) -> None:
    """Checks of allowed values and of combinations; each error says where the value came from."""

    def fail(key: str, message: str):
        where = {"default": "the default in netconfig.py",
                 "variant": f"variant {variant!r} in variant_config.json",
                 "env": f"environment variable {ENV_PREFIX}{key.upper()}"}[sources[key]]
        raise ConfigError(f"{key} = {_jsonable(getattr(config, key))!r} from {where}: {message}")

    if config.network not in models.REGISTRY:
        fail("network", f"no such architecture{closest(config.network, models.REGISTRY)}; "
                        f"registered: {', '.join(models.REGISTRY)}")
    if models.REGISTRY[config.network].needs_text and not config.text_columns:
        fail("text_columns", f"network {config.network!r} reads a text column; set text_columns "
                             f"(e.g. NET_TEXT_COLUMNS=title) or choose another network")
    if config.task not in TASKS:
        fail("task", f"no such task{closest(config.task, TASKS)}; tasks: {', '.join(TASKS)}")
    if config.top_k < 1:
        fail("top_k", "must be >= 1")
    if not 0 < config.multilabel_threshold < 1:
        fail("multilabel_threshold", "must be strictly between 0 and 1")
    if config.split not in SPLIT_METHODS:
        fail("split", f"must be one of {', '.join(SPLIT_METHODS)}{closest(config.split, SPLIT_METHODS)}")
    if config.split == "by_column" and not config.split_column:
        fail("split_column", "split = by_column orders rows by this column: name a time or group column")
    if config.split == "random" and config.split_column:
        fail("split_column", "is read with split = by_column only: set split too, or leave this empty")
    if config.rnn_cell not in RNN_CELLS:
        fail("rnn_cell", f"must be one of {', '.join(RNN_CELLS)}")
    if config.export_compression not in EXPORT_COMPRESSIONS:
        fail("export_compression", f"must be one of {', '.join(EXPORT_COMPRESSIONS)}")
    if not config.query:
        fail("query", "name a file of data/queries/ (without .sql)")
    for key in ("validation_fraction", "test_fraction"):
        if not 0 < getattr(config, key) < 1:
            fail(key, "must be strictly between 0 and 1")
    if config.validation_fraction + config.test_fraction >= 1:
        fail("test_fraction", f"with validation_fraction={config.validation_fraction} leaves no "
                              f"training rows: the two shares must add up to less than 1")
    if not 0 <= config.dropout < 1:
        fail("dropout", "must be in [0, 1)")
    if config.learning_rate <= 0:
        fail("learning_rate", "must be > 0")
    for key in ("batch_size", "steps_per_execution", "epochs", "embedding_dim_max", "text_embedding_dim", "rnn_units",
                "max_vocab_size", "min_category_count", "text_vocab_size", "text_max_tokens", "cross_layers", "list_max_items",
                "bq_table_expiration_hours"):
        if getattr(config, key) < 1:
            fail(key, "must be >= 1")
    for key in ("embedding_dim", "sample_rows", "early_stopping_patience", "cross_rank"):
        if getattr(config, key) < 0:
            fail(key, "must be >= 0 (0 turns it off)")
    if any(units < 1 for units in config.hidden_units):
        fail("hidden_units", "every width must be >= 1")

    roles = {"label_column": [config.label_column], "id_column": [config.id_column] if config.id_column else [],
             "categorical_columns": list(config.categorical_columns),
             "list_columns": list(config.list_columns),
             "numeric_columns": list(config.numeric_columns),
             "text_columns": list(config.text_columns),
             "weight_column": [config.weight_column] if config.weight_column else [],
             "split_column": [config.split_column] if config.split_column else []}
    if not config.label_column:
        fail("label_column", f"must name the target column ({TASKS[config.task].target})")
    seen: dict[str, str] = {}
    for key, columns in roles.items():
        for column in columns:
            if column in seen:
                fail(key, f"column {column!r} is also in {seen[column]}; a column has one role")
            seen[column] = key
    if not (config.categorical_columns or config.list_columns or config.numeric_columns or config.text_columns):
        fail("categorical_columns", "no feature columns: set categorical, numeric or text columns")
