"""`fab drift`: a dataset's rows against a model zip's reference profile, per feature and for the score.

    from netfab.train.drift_report import drift_report, format_table
    report = drift_report("artifacts/deep_v1/<run>/model.zip", "logs/2026-07-*.json", "artifacts/drift")
    print(format_table(report))      # PSI per feature and for the score, its level, the bin that moved most

The rows need the model's features, not a label. The zip's SavedModel scores them; the histograms
use the profile's bins (netfab.drift.profile) and PSI its levels (netfab.drift.psi: 0.1 watch,
0.25 act), the same the server's DriftMonitor computes over its window of traffic. drift.json and
drift.png are written to the output folder. A zip trained before netfab wrote a profile is one
PackageError, found before any row is read.
"""
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from netfab import model_zip, storage
from netfab.config import config_from_values
from netfab.drift.profile import SCORE, ReferenceProfile
from netfab.drift.psi import ACT, WATCH, level

FILES = ("drift.json", "drift.png")


@dataclasses.dataclass
class FeatureDrift:
    name: str  # a feature, or SCORE
    kind: str  # numeric, categorical, text, score
    psi: float
    level: str  # stable, watch, act
    labels: list[str]  # the bins
    reference: list[float]  # the reference's share in each bin
    observed: list[float]  # the dataset's share in each bin

    @property
    def moved(self) -> str:
        """The bin whose share moved most, as 'label: reference% -> observed%'."""
        change = np.abs(np.subtract(self.observed, self.reference))
        index = int(np.argmax(change))
        return f"{self.labels[index]}: {100 * self.reference[index]:.1f}% -> {100 * self.observed[index]:.1f}%"


@dataclasses.dataclass
class DriftReport:
    model: str
    dataset: str
    rows: int
    reference_rows: dict[str, int]  # train, validation
    features: list[FeatureDrift]  # most drifted first
    score: FeatureDrift
    outputs: list[str] = dataclasses.field(default_factory=list)


def drift_report(model_uri: str, dataset_uri: str, output_uri: str = "artifacts/drift") -> DriftReport:
    """PSI of every feature and of the score on `dataset_uri` against the zip's training rows."""
    from netfab.train.zip_scores import score_saved_model
    from netfab.train.zip_test_split import dataset_rows

    with tempfile.TemporaryDirectory(prefix="netfab-drift-") as tmp, model_zip.ModelZip(model_uri) as package:
        profile = ReferenceProfile.from_zip(package)  # before any row is read: an old zip is one line
        rows = dataset_rows(dataset_uri, config_from_values(package.json("config.json")["values"]), labelled=False)
        scores = score_saved_model(package.extract(Path(tmp)) / "saved_model", rows.columns)
    counts = profile.count(rows.columns, scores)
    drift = profile.drift(counts)
    measured = []
    for name, histogram in counts.items():
        bins = profile.bins(name)
        observed = histogram / histogram.sum() if histogram.sum() else histogram
        measured.append(FeatureDrift(name, bins.kind, drift[name], level(drift[name]), list(bins.labels),
                                     bins.fractions.tolist(), observed.tolist()))
    score = next(m for m in measured if m.name == SCORE)
    features = sorted((m for m in measured if m.name != SCORE), key=lambda m: -m.psi)
    report = DriftReport(model_uri, dataset_uri, len(rows), profile.rows, features, score)
    report.outputs = _write(report, output_uri)
    return report


def _write(report: DriftReport, output_uri: str) -> list[str]:
    from netfab.train.plots import plot_drift

    record = {"model": report.model, "dataset": report.dataset, "rows": report.rows,
              "reference_rows": report.reference_rows,
              "thresholds": {"watch": WATCH, "act": ACT, "measure": "population stability index"},
              "score": dataclasses.asdict(report.score),
              "features": [dataclasses.asdict(f) for f in report.features],
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="netfab-drift-") as tmp:
        folder = Path(tmp)
        (folder / FILES[0]).write_text(json.dumps(record, indent=1))
        plot_drift(report, folder / FILES[1])
        return [storage.publish_file(folder / name, storage.join(output_uri, name)) for name in FILES]


def format_table(report: DriftReport) -> str:
    """What `fab drift` prints: the score, then each feature, most drifted first."""
    width = max(len(f.name) for f in [report.score, *report.features])
    lines = [f"{'':<{width}} {'kind':<11} {'PSI':>7}  {'level':<7}  moved most"]
    lines += [f"{f.name:<{width}} {f.kind:<11} {f.psi:>7.3f}  {f.level:<7}  {f.moved}"
              for f in [report.score, *report.features]]
    acting = [f.name for f in [report.score, *report.features] if f.level == "act"]
    lines.append("")
    lines.append(f"rows: {report.rows:,} of {report.dataset} against the {report.reference_rows['train']:,} "
                 f"training rows of {report.model} (score and unseen values: its "
                 f"{report.reference_rows['validation']:,} validation rows)")
    lines.append(f"PSI below {WATCH} stable, {WATCH} to {ACT} watch, {ACT} and above act"
                 + (f": act on {', '.join(acting)}" if acting else ""))
    lines.append(f"written: {', '.join(report.outputs)}")
    return "\n".join(lines)
