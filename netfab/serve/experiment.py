"""An experiment: one endpoint whose requests are split across models (arms), with shadow models beside.

    {"endpoint": "bookings",
     "arms": {"deep_v1/labels/stable": 90, "deep_v1/labels/canary": 10},
     "shadow": ["wide_v1"],
     "assign_by": "header:X-User-Id",
     "salt": "bookings-2026-11"}

    experiment = Experiment.from_json(text, source="bookings.json")
    experiment.check(models)                          # every arm served, all taking the same features
    arms = experiment.assign(columns, rows, key)      # the arm index of each row

An arm is a model reference (netfab.serve.model_set: NAME, NAME/versions/V, NAME/labels/L) and
its weight: its share of traffic is weight / sum of weights. A label arm follows a relabel, so
promoting a canary is PUT /admin/models/deep_v1/labels/stable, no experiment change. Shadow models
score every request too, after it is answered; their scores are measured and logged, never returned.

assign_by:
  header:NAME    the request's NAME header is the key: all rows of a request go to one arm
  feature:NAME   the row's NAME feature is the key (one of the models' features): a request's
                 rows may go to several arms, each row's arm is sticky
  random         a fresh draw per request
A key is hashed with the salt as PlanOut does (sha1 of "salt.key", its first 60 bits as a fraction
of 2^60), so the same key always lands on the same arm for a given salt and weights, and a new
salt reshuffles every key. Changing weights moves only the keys whose fraction crosses a boundary.
"""
import bisect
import dataclasses
import hashlib
import itertools
import json
import random

import numpy as np

from netfab.errors import NetfabError, closest
from netfab.serve.columns import ByteSlices
from netfab.serve.inputs import InputError
from netfab.serve.model_set import parse_reference
from netfab.serve.refused import Refused

KEYS = {"endpoint": "the name requests use: /v1/models/<endpoint>:predict, /v2/models/<endpoint>/infer",
        "arms": 'model reference -> weight, e.g. {"deep_v1/labels/stable": 90, "deep_v1/labels/canary": 10}',
        "shadow": 'model references scored beside every request, never answering, e.g. ["wide_v1"]',
        "assign_by": "header:NAME | feature:NAME | random (default random)",
        "salt": "mixed into the key's hash; a new salt reshuffles every key (default: the endpoint)"}
ARM_HEADER = "Netfab-Arm"  # on every answer of an experiment: the arm (arms, comma-separated) that answered
HASH_SCALE = float(0xFFFFFFFFFFFFFFF)  # PlanOut's: the first 15 hex digits of the sha1
REMEMBERED_KEYS = 65_536  # keys whose arm an experiment remembers (a busy user comes back; the memo is then cleared)


@dataclasses.dataclass(frozen=True)
class Experiment:
    endpoint: str
    arms: tuple[str, ...]  # model references, in the file's order
    weights: tuple[float, ...]
    shadow: tuple[str, ...] = ()
    assign_by: str = "random"
    salt: str = ""
    # Worked out once, not per request: assign_by as (kind, name), the arms' cumulative shares, and
    # the arm of each key seen (new weights or a new salt make a new Experiment, with a new memo).
    _key: tuple = dataclasses.field(init=False, compare=False, repr=False)
    _bounds: tuple = dataclasses.field(init=False, compare=False, repr=False)
    _memo: dict = dataclasses.field(init=False, compare=False, repr=False, default_factory=dict)

    def __post_init__(self):
        kind, _, name = self.assign_by.partition(":")
        total, shares = sum(self.weights), itertools.accumulate(self.weights[:-1])
        object.__setattr__(self, "_key", (kind, name))
        object.__setattr__(self, "_bounds", tuple(share / total for share in shares))

    @classmethod
    def from_json(cls, text: str, source: str) -> "Experiment":
        try:
            values = json.loads(text)
        except ValueError as error:
            raise NetfabError(f"experiment {source}: not valid JSON ({error}); see docs/serving.md, Experiments")
        return cls.from_dict(values, source)

    @classmethod
    def from_dict(cls, values, source: str) -> "Experiment":
        """Checked values of an experiment file; a NetfabError naming the key, the file and what to write."""
        def problem(text: str) -> NetfabError:
            return NetfabError(f"experiment {source}: {text}")

        if not isinstance(values, dict):
            raise problem(f"must be a JSON object with the keys {', '.join(KEYS)}")
        for key in values:
            if key not in KEYS:
                raise problem(f"unknown key {key!r}{closest(key, KEYS)}; "
                              f"the keys are {', '.join(KEYS)}")
        endpoint = values.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint or "/" in endpoint or ":" in endpoint:
            raise problem(f'"endpoint" must be a name without "/" or ":" ({KEYS["endpoint"]})')
        arms = values.get("arms")
        if not isinstance(arms, dict) or not arms:
            raise problem(f'"arms" must be an object of {KEYS["arms"]}')
        for reference, weight in arms.items():
            parse_reference_in(reference, problem)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
                raise problem(f"arm {reference!r}: its weight must be a number above 0, got {weight!r} "
                              f"(drop the arm to stop sending it traffic)")
        shadow = values.get("shadow", [])
        if not isinstance(shadow, list) or not all(isinstance(s, str) for s in shadow):
            raise problem(f'"shadow" must be a list of {KEYS["shadow"]}')
        for reference in shadow:
            parse_reference_in(reference, problem)
            if reference in arms:
                raise problem(f"{reference!r} is both an arm and a shadow; a shadow never answers, an arm does")
        assign_by = values.get("assign_by", "random")
        kind, _, name = assign_by.partition(":") if isinstance(assign_by, str) else ("", "", "")
        if not (assign_by == "random" or (kind in ("header", "feature") and name)):
            raise problem(f'"assign_by" must be {KEYS["assign_by"]}, got {assign_by!r}')
        salt = values.get("salt", endpoint)
        if not isinstance(salt, str):
            raise problem(f'"salt" must be a string, got {salt!r}')
        return cls(endpoint, tuple(arms), tuple(float(w) for w in arms.values()), tuple(shadow), assign_by, salt)

    def as_dict(self) -> dict:
        return {"endpoint": self.endpoint, "arms": dict(zip(self.arms, self.weights)), "shadow": list(self.shadow),
                "assign_by": self.assign_by, "salt": self.salt}

    # --- against the served models --------------------------------------------------------------
    def check(self, models) -> dict:
        """Every arm and shadow served (netfab.serve.model_set.ModelSet), all taking the same features,
        the endpoint not a model's name; else a NetfabError naming the arm. Returns each reference's model."""
        if self.endpoint in models.models:
            raise NetfabError(f"experiment endpoint {self.endpoint!r} is also a served model's name; name the "
                              f"endpoint otherwise (requests to a model's name go to that model)")
        first, found = None, {}
        for reference in (*self.arms, *self.shadow):
            try:
                model = found[reference] = models.find(reference)
            except Refused as refused:
                raise NetfabError(f"experiment {self.endpoint!r}, arm {reference!r}: {refused.message}") from None
            if first is None:
                first = (reference, model)
            elif model.inputs.features != first[1].inputs.features:
                raise NetfabError(f"experiment {self.endpoint!r}: arm {reference!r} takes the features "
                                  f"{_features(model)}, arm {first[0]!r} takes {_features(first[1])}; every "
                                  f"arm of an endpoint must take the same request")
        kind, _, name = self.assign_by.partition(":")
        if kind == "feature" and name not in first[1].inputs.features:
            raise NetfabError(f"experiment {self.endpoint!r}: assign_by feature {name!r} is not a feature of its "
                              f"models ({_features(first[1])}); key on a header (header:X-User-Id) for a value "
                              f"the models do not take")
        return found

    # --- assignment -----------------------------------------------------------------------------
    def assign(self, columns: dict, rows: int, header_value: str | None) -> np.ndarray | int:
        """The arm index of the request (an int), or of each row (an array) when keyed by a feature.
        An InputError (400) when the header that keys this experiment is missing."""
        kind, name = self._key
        if kind == "random":
            return self._arm_at(random.random())
        if kind == "header":
            if header_value is None:
                raise InputError(f"experiment {self.endpoint!r} assigns arms by the {name!r} header (the key "
                                 f"that keeps a user on one arm); send it with every request")
            return self.arm_of(header_value)
        values = columns[name]
        if isinstance(values, ByteSlices):  # OIP v2 binary strings: cut out of the body
            values = values.to_numpy()
        if rows == 1:
            return self.arm_of(values[0])
        distinct, inverse = np.unique(values, return_inverse=True)  # each user once, however many rows
        arms = np.array([self.arm_of(value) for value in distinct], dtype=np.int32)
        return arms[inverse]

    def arm_of(self, key) -> int:
        """The arm index of a key (a header's text, or a feature's value as its column holds it),
        remembered as given: keys come back (users, items), and on a busy server the hash is a
        noticeable share of an experiment's own cost per request. A feature's column holds one
        type, so equal values of a key are equal texts."""
        memo = self._memo
        arm = memo.get(key)
        if arm is None:
            if len(memo) >= REMEMBERED_KEYS:
                memo.clear()
            arm = memo[key] = self._arm_at(self.fraction(_key_text(key)))
        return arm

    def fraction(self, key: str) -> float:
        """The key's place in [0, 1): PlanOut's hash of salt.key."""
        digest = hashlib.sha1(f"{self.salt}.{key}".encode()).hexdigest()
        return int(digest[:15], 16) / HASH_SCALE

    def _arm_at(self, fraction: float) -> int:
        return min(bisect.bisect_right(self._bounds, fraction), len(self.arms) - 1)

    def header_name(self) -> str | None:
        kind, name = self._key
        return name if kind == "header" else None


def parse_reference_in(reference, problem) -> None:
    if not isinstance(reference, str):
        raise problem(f"a model reference must be a string, got {reference!r}")
    try:
        parse_reference(reference)
    except NetfabError as error:
        raise problem(str(error)) from None


def _key_text(value) -> str:
    """A feature value as the key's text: the string itself, a number as its shortest repr (83.0 -> '83.0')."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    return str(value.item() if isinstance(value, np.generic) else value)


def _features(model) -> str:
    return ", ".join(model.inputs.features)


class ArmRoute:
    """One arm as served: its model, its figures, and the tag its rows are scored with (what else
    they are for: drift, the shadows; netfab.serve.app.scored_rows)."""
    __slots__ = ("reference", "model", "metrics", "tag", "headers")

    def __init__(self, endpoint: str, reference: str, model, metrics, shadows: tuple, tagged: bool):
        self.reference, self.model, self.metrics = reference, model, metrics
        self.tag = (endpoint, reference, shadows, None) if tagged else None
        self.headers = {ARM_HEADER: reference}


class ServedExperiment:
    """An experiment with its arms' and shadows' models in the set served, resolved once per change
    of what is served rather than per request: what each ExperimentCall is made from.
    models: each reference's model (Experiment.check); metrics: netfab.serve.metrics.ServingMetrics;
    drift: whether the rows are tracked for drift."""

    def __init__(self, experiment: Experiment, models: dict, metrics, drift: bool):
        self.experiment = experiment
        self.header = experiment.header_name()  # the header that keys the arms, if one does
        self.shadows = tuple((reference, models[reference]) for reference in experiment.shadow)
        endpoint = experiment.endpoint
        self.arms = tuple(ArmRoute(endpoint, reference, models[reference], metrics.arm(endpoint, reference, "live"),
                                   self.shadows, bool(self.shadows) or drift) for reference in experiment.arms)


class ExperimentCall:
    """One request to an experiment's endpoint, as a protocol handler holds it in the place of a model:
    `name` and `inputs` (the arms' shared schema) to read the request, `output` and `classes` (the
    first arm's: the task's output, which the arms share) to answer it, `answered` (the ArmRoutes
    that scored its rows) once scored. `served`: the experiment as served when the request started
    (a relabel or reweight since does not matter to it)."""
    __slots__ = ("served", "experiment", "header_value", "name", "inputs", "output", "classes", "answered")

    def __init__(self, served: ServedExperiment, header_value: str | None):
        self.served, self.experiment, self.header_value = served, served.experiment, header_value
        self.name = served.experiment.endpoint
        first = served.arms[0].model
        self.inputs, self.output, self.classes = first.inputs, first.output, first.classes
        self.answered: list[ArmRoute] = []

    @property
    def version(self) -> str:
        """The version(s) of the model(s) that answered; before scoring, the first arm's."""
        if not self.answered:
            return self.served.arms[0].model.version
        return ",".join(dict.fromkeys(route.model.version for route in self.answered))

    @property
    def arms(self) -> list[str]:
        """The arms that answered."""
        return [route.reference for route in self.answered]

    def headers(self) -> dict:
        if len(self.answered) == 1:
            return self.answered[0].headers
        return {ARM_HEADER: ",".join(self.arms)}


def answer_headers(target) -> dict | None:
    """The headers an answer carries for what the request named: the arm(s) of an experiment, else none."""
    return target.headers() if isinstance(target, ExperimentCall) else None
