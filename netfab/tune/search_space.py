"""A search space as data: one flat JSON file per variant, each key a NetConfig key with a distribution.

    from netfab.tune.search_space import load_space
    space = load_space("deep_v1")                     # search_spaces/deep_v1.json
    trial = study.ask(space.distributions())          # Optuna samples it
    values = space.decode(trial.params)               # {"learning_rate": 0.0021, "hidden_units": [64, 32]}
    space.to_env(values)                              # {"NET_LEARNING_RATE": "0.0021", ...}

A file (search_spaces/<variant>.json by default) looks like

    {"learning_rate": {"log_uniform": [0.0003, 0.03]},   # low, high; low > 0
     "dropout":       {"uniform": [0.0, 0.4]},          # low, high
     "embedding_dim_max": {"int": [4, 32]},             # integers low..high, both included
     "batch_size":    [32, 64, 128],                    # choices (also {"choice": [...]})
     "hidden_units":  [[32], [64, 32]]}                 # a choice may be a list for a list key

Every bound and choice is checked as a config value of the variant when the file is read, so a
study never starts with a value that `fab train` would refuse. Each key maps onto an Optuna
distribution (choices: categorical, over their NET_ strings when a choice is a list; uniform and
log_uniform: float, log=True for the latter; int: int), and the study's sampler draws from them.
"""
import dataclasses
import json
import math
from pathlib import Path

import netconfig
from netfab.config import FIELDS, ENV_PREFIX, load_config
from netfab.environment import PROJECT_ROOT
from netfab.errors import ConfigError, closest

SPACES_DIR = PROJECT_ROOT / "search_spaces"
DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int")


@dataclasses.dataclass(frozen=True)
class Dimension:
    key: str
    kind: str  # one of DISTRIBUTIONS
    values: tuple  # the choices, or (low, high)

    def distribution(self):
        """The Optuna distribution this dimension maps onto."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":  # Optuna's choices are scalars: a list travels as its NET_ string
            return CategoricalDistribution([_choice_key(v) for v in self.values])
        low, high = self.values
        if self.kind == "int":
            return IntDistribution(low, high)
        return FloatDistribution(low, high, log=self.kind == "log_uniform")

    def decode(self, param):
        """The config value for the parameter Optuna suggested."""
        if self.kind == "choice":
            return next(v for v in self.values if _choice_key(v) == param)
        return param

    def at_edge(self, value, share: float = 0.1) -> str:
        """'low'/'high' when `value` sits in the outer `share` of the range (log scale for
        log_uniform; the first/last of 3+ ordered numeric choices), else ''."""
        if self.kind == "choice":
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values)
            if not numeric or len(self.values) < 3:
                return ""
            ordered = sorted(self.values)
            return "low" if value == ordered[0] else "high" if value == ordered[-1] else ""
        low, high = self.values
        scale = math.log if self.kind == "log_uniform" else float
        position = (scale(value) - scale(low)) / (scale(high) - scale(low))
        return "low" if position < share else "high" if position > 1 - share else ""

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(json.dumps(v) for v in self.values)
        return f"{self.kind} [{self.values[0]}, {self.values[1]}]"


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    variant: str
    source: str  # the file it came from, for messages
    dimensions: dict[str, Dimension]
    raw: dict  # the file's content, recorded in study.json

    def distributions(self) -> dict:
        return {key: dim.distribution() for key, dim in self.dimensions.items()}

    def decode(self, params: dict) -> dict:
        """Optuna's parameters -> the values a trial trains with (floats to 4 significant digits)."""
        return {key: _rounded(dim.decode(params[key])) for key, dim in self.dimensions.items()}

    @classmethod
    def from_record(cls, variant: str, raw: dict, source: str) -> "SearchSpace":
        """The space recorded in a study.json (already checked when the study was created)."""
        return cls(variant, source, {k: _dimension(k, spec, source) for k, spec in raw.items()}, raw)

    def to_env(self, values: dict) -> dict[str, str]:
        return {f"{ENV_PREFIX}{key.upper()}": env_value(value) for key, value in values.items()}


def env_value(value) -> str:
    """A config value as a NET_<KEY> string: lists comma-separated, booleans true/false."""
    if isinstance(value, (list, tuple)):
        return ",".join(env_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _choice_key(value):
    """A choice as Optuna stores it: a scalar as is, a list as its NET_ string ("64,32")."""
    return env_value(value) if isinstance(value, (list, tuple)) else value


def default_space_path(variant: str) -> Path:
    return SPACES_DIR / f"{variant}.json"


def load_space(variant: str, path=None, fixed_env=None) -> SearchSpace:
    """The search space in `path` (default search_spaces/<variant>.json), checked against the
    variant's config with the study's fixed NET_* overrides `fixed_env` applied."""
    fixed_env = dict(fixed_env or {})
    task = load_config(variant, environ=fixed_env).config.task  # an unknown variant or bad override fails first
    if task != "binary":  # trials are ranked by validation AUC (netfab/tune/report.py)
        raise ConfigError(f"variant {variant!r} has task = {task}; fab tune ranks trials by validation AUC "
                          f"and tunes task = binary variants only for now")
    path = Path(path) if path else default_space_path(variant)
    if not path.is_file():
        spaces = sorted(p.name for p in SPACES_DIR.glob("*.json"))
        raise ConfigError(f"search space {path} does not exist; write one (see docs/tuning.md) "
                          f"or pass --space=FILE; shipped spaces: {', '.join(spaces) or 'none'}")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"search space {path} is not valid JSON: {error}") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f'search space {path} must be a non-empty JSON object mapping NetConfig '
                          f'keys to distributions, e.g. {{"learning_rate": {{"log_uniform": [0.0003, 0.03]}}}}')
    dimensions = {}
    for key, spec in raw.items():
        where = f"{key!r} in search space {path}"
        if key not in FIELDS:
            raise ConfigError(f"unknown key {where}{closest(key, FIELDS)}; keys are the fields "
                              f"of NetConfig in netconfig.py")
        env_name = f"{ENV_PREFIX}{key.upper()}"
        if env_name in fixed_env:
            raise ConfigError(f"{env_name} is set in the environment and {where} searches it; "
                              f"unset {env_name} or drop {key!r} from the space")
        dimension = _dimension(key, spec, where)
        for value in dimension.values:
            _check_value(variant, fixed_env, key, value, where)
        dimensions[key] = dimension
    return SearchSpace(variant, str(path), dimensions, raw)


def _dimension(key: str, spec, where: str) -> Dimension:
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: expected a list of choices or one of "
                          f'{{"choice": [...]}}, {{"uniform": [low, high]}}, '
                          f'{{"log_uniform": [low, high]}}, {{"int": [low, high]}}; received {json.dumps(spec)}')
    (kind, values), = spec.items()
    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: unknown distribution {kind!r}{closest(kind, DISTRIBUTIONS)}; "
                          f"use one of {', '.join(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: choice needs a non-empty list of values, received {json.dumps(values)}")
        return Dimension(key, kind, tuple(tuple(v) if isinstance(v, list) else v for v in values))
    numbers = isinstance(values, list) and len(values) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numbers:
        raise ConfigError(f"{where}: {kind} needs [low, high] as two numbers, received {json.dumps(values)}")
    low, high = values
    if not low < high:
        raise ConfigError(f"{where}: {kind} range [{low}, {high}] is empty or reversed; low must be < high")
    if kind == "int" and not all(isinstance(v, int) for v in values):
        raise ConfigError(f"{where}: int range [{low}, {high}] needs integer bounds")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"{where}: log_uniform range [{low}, {high}] needs low > 0 (a log scale has no 0)")
    return Dimension(key, kind, (low, high))


def _check_value(variant: str, fixed_env: dict, key: str, value, where: str) -> None:
    """Refuse a bound or choice that `fab train` would refuse, with the config's own message."""
    env = {**fixed_env, f"{ENV_PREFIX}{key.upper()}": env_value(value)}
    if isinstance(value, (list, tuple)) != isinstance(getattr(netconfig.NetConfig(), key), tuple):
        raise ConfigError(f"{where}: value {json.dumps(value)} has the wrong shape for {key} "
                          f"(a {'list' if isinstance(value, (list, tuple)) else 'single value'}); "
                          f"the default is {json.dumps(_plain(getattr(netconfig.NetConfig(), key)))}")
    try:
        load_config(variant, environ=env)
    except ConfigError as error:
        message = str(error).replace(f" from environment variable {ENV_PREFIX}{key.upper()}", "")
        raise ConfigError(f"{where}: value {json.dumps(value)} is not a valid config value: "
                          f"{message}") from None


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _rounded(value):
    # Floats get 4 significant digits: the leaderboard, the command line and the trial agree.
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return list(value) if isinstance(value, tuple) else value
