"""`fab optimize`: a model zip in, a zip whose numeric core is optimised out, measured against it.

    from netfab.train.optimize import optimize_zip, format_table
    report = optimize_zip("artifacts/deep_v1/<run>/model.zip", "artifacts/deep_v1/<run>/model-xla.zip", to="xla")
    print(format_table(report))

1. The zip is verified and its test split rebuilt (zip_test_split.py); scored by the zip's own
   SavedModel it must give the test AUC the zip records, or it is not the split that reported.
2. Each form asked for (core_forms.py) is built, exported and scored on the same rows through
   its SavedModel; a form that loses more than `max_auc_drop` of test AUC is refused.
3. The original and each form kept are zipped and timed in one fresh process, through the calls
   fab serve makes (`python -m netfab.serve.latency`; the train wing does not import serving).
4. The chosen form (the one asked for; with "all", the fastest: see `fastest`) gets
   optimization.json with every figure, and is published whole at the output URI.
Nothing is written at the output unless every step succeeds.
"""
import dataclasses
import json
import logging
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netfab import model_zip, storage
from netfab.config import config_from_values
from netfab.errors import NetfabError, closest
from netfab.train.core_forms import FORMS
from netfab.train.metrics import roc_auc
from netfab.train.zip_scores import score_saved_model
from netfab.train.zip_test_split import rebuild_test_split

log = logging.getLogger(__name__)
ALL = "all"
MAX_AUC_DROP = 0.002  # test AUC an optimisation may lose
# The original's SavedModel on the rebuilt split against the AUC the zip records: equal but for
# float rounding, which on a small split can swap one pair of scores (1 / (positives x negatives)).
RECORDED_AUC_TOLERANCE = 1e-3
LATENCY_ROUNDS = 20  # turns each zip takes at being timed (netfab/serve/latency.py)
LATENCY_TIMEOUT_S = 1800


@dataclasses.dataclass
class Measured:
    """One zip's figures: the original's or a form's."""

    form: str  # "original" or a name in FORMS
    test_auc: float
    saved_model_bytes: int
    zip_bytes: int = 0  # a form's zip as timed, before optimization.json is added to it
    single_row_ms: float = math.nan  # p50 of one-row calls
    batch_ms: float = math.nan  # p50 of 1,000-row calls
    refused: str = ""  # why the form was not kept


@dataclasses.dataclass
class Optimization:
    source: str  # the zip optimised
    output: str  # the zip written
    form: str  # the form written
    dataset: str  # where the test split was read
    test_rows: int
    max_auc_drop: float
    original: Measured
    forms: list[Measured]  # every form tried, refused ones too


def optimize_zip(model_uri: str, output_uri: str, to: str = ALL, dataset_uri: str | None = None,
                 max_auc_drop: float = MAX_AUC_DROP, latency_rounds: int = LATENCY_ROUNDS) -> Optimization:
    """Write `to`'s form of the zip at `model_uri` to `output_uri`, or raise NetfabError saying why not."""
    names = _check_request(model_uri, output_uri, to, max_auc_drop)
    with tempfile.TemporaryDirectory(prefix="netfab-optimize-") as tmp, model_zip.ModelZip(model_uri) as package:
        # 1. The test split the zip reported on, and the original's AUC on it.
        work = Path(tmp)
        config_json = package.json("config.json")
        task = config_json["values"].get("task", "binary")
        if task != "binary":
            raise NetfabError(f"{model_uri} is a {task} model; fab optimize compares forms by test AUC "
                              f"and takes task = binary models only: serve this zip as trained")
        split = rebuild_test_split(package, dataset_uri)  # before TensorFlow loads: a wrong dataset fails fast
        original_dir = package.extract(work / "original")
        original = Measured("original", _test_auc(original_dir / "saved_model", split),
                            _bytes(original_dir / "saved_model"), package.path.stat().st_size)
        recorded = config_json["result"]["test_auc"]
        if abs(original.test_auc - recorded) > RECORDED_AUC_TOLERANCE:
            raise NetfabError(f"{model_uri} scores {original.test_auc:.4f} test AUC on the test split rebuilt "
                              f"from {split.dataset}, but records {recorded:.4f}: the split is not the one "
                              f"it reported on, so no comparison would be fair")
        log.info("test split: %d rows of %s; original test AUC %.4f", len(split), split.dataset, original.test_auc)

        # 2. Each form, built and scored; refused if it loses too much.
        config = config_from_values(config_json["values"])
        measured, staged = [], {}
        for name in names:
            staging = work / name / "package"  # write_package zips beside it, in work/<name>/
            _stage_form(name, original_dir, staging, config)
            result = Measured(name, _test_auc(staging / "saved_model", split), _bytes(staging / "saved_model"))
            drop = original.test_auc - result.test_auc
            if drop > max_auc_drop:
                result.refused = (f"loses {drop:.4f} test AUC ({result.test_auc:.4f}, the original "
                                  f"{original.test_auc:.4f}), more than --max-auc-drop={max_auc_drop:g}")
            else:
                staged[name] = staging
            log.info("%s: test AUC %.4f%s", name, result.test_auc,
                     f"; refused: it {result.refused}" if result.refused else "")
            measured.append(result)
        if not staged:
            reasons = "; ".join(f"{m.form} {m.refused}" for m in measured)
            raise NetfabError(f"no zip written: {reasons}")

        # 3. The original and each kept form, zipped and timed side by side in a fresh process.
        candidates = {name: work / f"{name}.zip" for name in staged}
        for name, staging in staged.items():
            model_zip.write_package(staging, str(candidates[name]))
        timings = _time_zips([package.path, *candidates.values()], split.files[0], latency_rounds)
        for result, timing in zip([original] + [m for m in measured if m.form in staged], timings):
            result.single_row_ms, result.batch_ms = timing["single_row_ms"], timing["batch_ms"]
            if result.form in candidates:
                result.zip_bytes = candidates[result.form].stat().st_size

        # 4. The chosen form, with what was measured, published whole.
        chosen = fastest([m for m in measured if m.form in staged], original).form
        report = Optimization(model_uri, output_uri, chosen, split.dataset, len(split), max_auc_drop,
                              original, measured)
        staging = staged[chosen]
        storage.write_json_atomically(staging / model_zip.OPTIMIZATION,
                                      _record(report, config_json, storage.file_sha256(package.path)))
        report.output = model_zip.write_package(staging, output_uri)
    log.info("optimised zip (%s): %s", chosen, report.output)
    return report


def fastest(forms: list[Measured], original: Measured) -> Measured:
    """The form with the smallest product of its one-row and 1,000-row latency ratios to the original.

    Both count alike: a form that halves one-row latency (an RNN core under XLA) is not passed
    over for one a few percent faster on batches, which is within the noise of a shared machine.
    """
    return min(forms, key=lambda m: m.single_row_ms / original.single_row_ms * m.batch_ms / original.batch_ms)


def _check_request(model_uri: str, output_uri: str, to: str, max_auc_drop: float) -> list[str]:
    """The forms to try; NetfabError for a request that cannot work (before anything loads)."""
    if to != ALL and to not in FORMS:
        raise NetfabError(f"--to={to!r} is not a form{closest(to, [*FORMS, ALL])}; choose one of "
                          f"{', '.join(FORMS)}, or {ALL} to try each and write the fastest")
    if not math.isfinite(max_auc_drop):
        raise NetfabError(f"--max-auc-drop={max_auc_drop} must be a number (the test AUC a form may lose)")
    if not storage.is_gcs(output_uri) and storage.local_path(output_uri).is_dir():
        raise NetfabError(f"--output={output_uri} is a folder; name the zip to write, e.g. "
                          f"{storage.join(output_uri, f'model-{to}.zip')}")
    if _same_file(model_uri, output_uri):
        raise NetfabError(f"--output={output_uri} is the zip being optimised; write the optimised zip "
                          f"under another name, e.g. model-{to}.zip")
    return list(FORMS) if to == ALL else [to]


def _same_file(a: str, b: str) -> bool:
    if storage.is_gcs(a) or storage.is_gcs(b):
        return a.rstrip("/") == b.rstrip("/")
    return storage.local_path(a).resolve() == storage.local_path(b).resolve()


def _stage_form(name: str, original: Path, staging: Path, config) -> None:
    """Fill `staging` with the zip's files, the form's SavedModel and Keras files in place of the originals."""
    import models
    from netfab.train.core_forms import optimized_form

    started = time.monotonic()
    form = optimized_form(name, models.load(original / "model.keras"), config)
    replaced = {"saved_model", model_zip.MANIFEST, *form.changed_files}
    shutil.copytree(original, staging, ignore=lambda folder, names: [n for n in names if n in replaced]
                    if Path(folder) == original else [])
    model_zip.export_saved_model(form.model, staging / "saved_model", serve=form.serve)
    if "model.keras" in form.changed_files:
        form.model.save(staging / "model.keras")
        form.core.save(staging / "core.keras")  # no optimizer state: an optimised core is not trained on
    log.info("%s: built and exported in %.1f s", name, time.monotonic() - started)


def _test_auc(saved_model: Path, split) -> float:
    """The test AUC of a SavedModel's serving signature on the raw test rows."""
    return roc_auc(split.labels, score_saved_model(saved_model, split.columns))


def _time_zips(zips: list[Path], rows_file: Path, rounds: int) -> list[dict]:
    """Each zip's latency from `python -m netfab.serve.latency`, run in a fresh process."""
    log.info("timing %d zips in a fresh process, as fab serve calls them", len(zips))
    timed = subprocess.run([sys.executable, "-m", "netfab.serve.latency", *map(str, zips), "--rows",
                            str(rows_file), "--rounds", str(rounds)],
                           capture_output=True, text=True, timeout=LATENCY_TIMEOUT_S)
    if timed.returncode != 0:
        last = (timed.stderr.strip().splitlines() or ["no output"])[-1]
        raise NetfabError(f"timing the zips failed (python -m netfab.serve.latency): {last}")
    return json.loads(timed.stdout)["zips"]


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _record(report: Optimization, config_json: dict, source_sha256: str) -> dict:
    """optimization.json: what was done, on which rows, and every figure measured."""
    from netfab.environment import describe_environment

    figures = {m.form: dataclasses.asdict(m) for m in [report.original, *report.forms]}
    return {
        "form": report.form, "description": FORMS[report.form],
        "source": {"uri": report.source, "sha256": source_sha256, "run_id": config_json["run_id"]},
        "test_split": {"dataset": report.dataset, "rows": report.test_rows},
        "max_auc_drop": report.max_auc_drop,
        "original": figures["original"], "optimized": figures[report.form],
        "forms": [figures[m.form] for m in report.forms],
        "measured_as": {
            "test_auc": "the SavedModel's signature on the raw rows of the test split above",
            "single_row_ms": "p50 of one-row calls in the calling thread, as fab serve scores a lone request",
            "batch_ms": "p50 of 1,000-row calls on TensorFlow's thread pools, as the batcher makes them",
            "zip_bytes": "a form's zip as timed, before this file was added to it"},
        "environment": describe_environment(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def format_table(report: Optimization) -> str:
    """The original and every form side by side: sizes, test AUC, latency; which one was written."""
    def size(count: int) -> str:
        return f"{count / 1e6:.2f} MB" if count >= 1e6 else f"{count / 1e3:.1f} kB"

    def against(value: float, base: float) -> str:
        return f"{value:.3f} ms ({value / base:.2f}x)"

    original = report.original
    lines = [f"{'form':<9} {'zip':>9} {'saved_model':>11} {'test AUC':>9} {'change':>8}  "
             f"{'1 row p50':<18} {'1,000 rows p50':<18}",
             f"{'original':<9} {size(original.zip_bytes):>9} {size(original.saved_model_bytes):>11} "
             f"{original.test_auc:>9.4f} {'':>8}  {original.single_row_ms:.3f} ms{'':<10} "
             f"{original.batch_ms:.3f} ms"]
    for m in report.forms:
        head = f"{m.form:<9} "
        change = f"{m.test_auc - original.test_auc:>+8.4f}"
        if m.refused:
            lines.append(f"{head}{'':>9} {size(m.saved_model_bytes):>11} {m.test_auc:>9.4f} {change}  "
                         f"refused: {m.refused}")
            continue
        lines.append(f"{head}{size(m.zip_bytes):>9} {size(m.saved_model_bytes):>11} {m.test_auc:>9.4f} "
                     f"{change}  {against(m.single_row_ms, original.single_row_ms):<18} "
                     f"{against(m.batch_ms, original.batch_ms):<18}{'  <- written' * (m.form == report.form)}")
    lines.append(f"test split: {report.test_rows:,} rows of {report.dataset}; latency: p50, in one process "
                 f"taking turns, as fab serve calls the model (a lone row, a 1,000-row batch)")
    lines.append(f"written: {report.output} ({report.form})")
    return "\n".join(lines)
