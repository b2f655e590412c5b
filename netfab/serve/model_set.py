"""The models one `fab serve` holds: several names, several versions of each, and labels, as TF Serving has them.

    models = ModelSet.of([deep_v1_old, deep_v1_new, wide_v1], labels={"deep_v1": {"stable": "<run id>"}})
    models.find("deep_v1")                      # its "stable" version if labelled, else its newest
    models.find("deep_v1", version="<run id>")  # that version
    models.find("deep_v1", label="canary")      # the version its "canary" label points at
    models.find("deep_v1/labels/canary")        # the same, as a reference (an experiment's arm)

A version is the training run id (<UTC time>-<fingerprint>), so the newest version sorts last,
as TensorFlow Serving's highest version number does. A ModelSet never changes: the server builds
a new one for every load, unload or relabel and swaps it in at once, so that a request sees one
consistent set from the moment it names its model (netfab.serve.app). Each mistake is a Refused
(404 for what is not served) or a NetfabError naming what is served.
"""
import dataclasses
import re
from types import MappingProxyType

from netfab import storage
from netfab.errors import NetfabError
from netfab.serve.refused import Refused

STABLE = "stable"  # the label a name's plain requests go to, when it is set
LABEL_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")  # a word, never a run id (those start with a digit)
REFERENCE = re.compile(r"^(?P<name>[^/:]+)(?:/(?P<kind>versions|labels)/(?P<value>[^/:]+))?$")


@dataclasses.dataclass(frozen=True)
class ModelSet:
    models: MappingProxyType  # name -> {version: ServingModel}
    labels: MappingProxyType  # name -> {label: version}

    @classmethod
    def of(cls, loaded, labels: dict | None = None) -> "ModelSet":
        """A set of loaded models (ServingModel) and labels {name: {label: version}}; a NetfabError
        if two models share a name and version, or a label points at a version not in the set."""
        models: dict[str, dict] = {}
        for model in loaded:
            versions = models.setdefault(model.name, {})
            if model.version in versions:
                raise NetfabError(f"{model.uri} and {versions[model.version].uri} are both {model.name} "
                                  f"version {model.version}; serve one of them")
            versions[model.version] = model
        labels = {name: dict(named) for name, named in (labels or {}).items() if named}
        for name, named in labels.items():
            for label, version in named.items():
                if not LABEL_RULE.match(label):
                    raise NetfabError(f"label {label!r} of {name}: a label is a word of letters, digits, '-' "
                                      f"and '_', starting with a letter (e.g. stable, canary)")
                if version not in models.get(name, {}):
                    raise NetfabError(f"label {name}/labels/{label} points at version {version!r}, which is not "
                                      f"loaded; loaded versions of {name}: {_listed(models.get(name, {}))}")
        return cls(MappingProxyType({name: MappingProxyType(v) for name, v in models.items()}),
                   MappingProxyType({name: MappingProxyType(v) for name, v in labels.items()}))

    def __iter__(self):
        """Every loaded model, by name then version."""
        for name in sorted(self.models):
            for version in sorted(self.models[name]):
                yield self.models[name][version]

    def __len__(self) -> int:
        return sum(len(versions) for versions in self.models.values())

    def default_version(self, name: str) -> str:
        """What a request naming only `name` gets: its stable label if set, else its newest version."""
        return self.labels.get(name, {}).get(STABLE) or max(self.models[name])

    def labels_of(self, name: str, version: str) -> list[str]:
        return sorted(label for label, v in self.labels.get(name, {}).items() if v == version)

    def find(self, name: str, version: str | None = None, label: str | None = None, listing: str = ""):
        """The model a request names: `name` alone, or with a version or a label (a gRPC version_label
        may be either); `name` may also be a reference "name/versions/V" or "name/labels/L".
        Refused 404 naming what is served. listing: the protocol's path to its models, for the message."""
        if version is None and label is None and "/" in name:
            name, version, label = parse_reference(name)
        versions = self.models.get(name)
        if versions is None:
            names = sorted(self.models)
            where = f" (GET {listing}/{names[0] if len(names) == 1 else '<name>'})" if listing and names else ""
            raise Refused(404, f"model {name!r} is not served here; this server serves "
                               f"{', '.join(map(repr, names)) or 'no model'}{where}")
        if version is not None and version not in versions and version in self.labels.get(name, {}):
            version, label = None, version  # TF Serving's gRPC version_label, or a label given as a version
        if label is not None:
            version = self.labels.get(name, {}).get(label)
            if version is None:
                raise Refused(404, f"model {name!r} has no label {label!r}; its labels: "
                                   f"{_listed(self.labels.get(name, {}))} (set one with PUT "
                                   f"/admin/models/{name}/labels/{label})")
        if version is None:
            return versions[self.default_version(name)]
        if version not in versions:
            raise Refused(404, f"model {name!r} has no version {version!r} here: it is served in version(s) "
                               f"{_listed(versions)} only (training run ids; labels: "
                               f"{_listed(self.labels.get(name, {}))}); leave the version out, or ask for one")
        return versions[version]

    def describe(self) -> list[dict]:
        """Each model with its labels and which one plain requests to its name get."""
        return [{**model.describe(), "labels": self.labels_of(model.name, model.version),
                 "default": model.version == self.default_version(model.name)} for model in self]


def parse_reference(reference: str) -> tuple[str, str | None, str | None]:
    """"deep_v1", "deep_v1/versions/<run id>" or "deep_v1/labels/canary" -> (name, version, label)."""
    match = REFERENCE.match(reference)
    if not match:
        raise NetfabError(f"model reference {reference!r}: write NAME, NAME/versions/VERSION or NAME/labels/LABEL "
                          f"(e.g. deep_v1/labels/canary)")
    kind, value = match["kind"], match["value"]
    return match["name"], value if kind == "versions" else None, value if kind == "labels" else None


def find_model_zips(uri: str) -> list[str]:
    """A model zip's URI as it is; a model repository (a folder or gs:// prefix) -> the zips under it,
    at any depth (fab train writes <output>/<variant>/<run id>/model.zip), sorted."""
    if str(uri).endswith(".zip"):
        return [str(uri)]
    if storage.is_gcs(uri):
        from netfab.storage import gcs

        location = gcs.parse(uri)
        prefix = location.name.rstrip("/") + "/" if location.name else ""
        with gcs.errors(uri, "list"):
            zips = sorted(f"gs://{location.bucket}/{blob.name}" for blob in
                          gcs.client().bucket(location.bucket).list_blobs(prefix=prefix) if blob.name.endswith(".zip"))
    else:
        folder = storage.local_path(uri)
        if not folder.is_dir():
            raise NetfabError(f"--model {uri}: neither a model zip (*.zip) nor a folder of them; pass a zip "
                              f"fab train wrote, or the folder (or gs:// prefix) holding several")
        zips = sorted(str(path) for path in folder.rglob("*.zip") if not path.name.startswith("."))
    if not zips:
        raise NetfabError(f"--model {uri}: no model zips (*.zip) under it; train one there (fab train "
                          f"--output={uri}) or pass a zip's URI")
    return zips


def _listed(names) -> str:
    return ", ".join(sorted(names)) or "none"
