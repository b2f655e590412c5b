"""The rows a zip is scored on: its test split rebuilt from its dataset (the rows its test AUC was
reported on), or every row of another dataset.

    from netfab.train.zip_test_split import dataset_rows, rebuild_test_split
    with ModelZip(uri) as package:
        split = rebuild_test_split(package)          # or dataset_uri=... if the data has moved
    split.columns["price"], split.labels             # raw columns, as the serving signature takes them
    rows = dataset_rows("gs://bucket/july/", config) # every row, the columns `config` names

A zip records what makes its split reproducible: the dataset's source, files and content sha256
(dataset_metadata.json), and the seed, fractions and sample size of its config (config.json).
The same files give the same rows, and data.preparation.split_rows the same test rows; a
dataset whose content differs is refused, since its "test split" would be other rows. The
validation split is never rebuilt here: it chose the epoch, so it does not report.
"""
import dataclasses
from pathlib import Path

import numpy as np

from netfab import storage
from netfab.config import config_from_values
from netfab.errors import DataError


@dataclasses.dataclass
class SplitRows:
    dataset: str  # the URI the rows were read from
    files: list[Path]  # its files, local (gs:// ones through the download cache)
    columns: dict[str, np.ndarray]  # raw feature columns: strings ("" for null), float32 (NaN for null)
    labels: np.ndarray  # float32 0/1

    def __len__(self) -> int:
        return len(self.labels)


def rebuild_test_split(package, dataset_uri: str | None = None, config=None) -> SplitRows:
    """The test rows of the opened zip `package` (netfab.model_zip.ModelZip), from `dataset_uri`
    or, by default, the dataset source the zip records; DataError if they cannot be the same rows.

    config: read with it instead of the zip's own config, e.g. to read more columns; it must keep
    the zip's seed, fractions and sample size, which choose the rows.
    """
    from data.loading import load_rows
    from data.preparation import split_rows

    metadata = package.json("dataset_metadata.json")
    config = config or config_from_values(package.json("config.json")["values"])
    uri = dataset_uri or metadata["source"]
    try:
        files = storage.dataset_files(uri)
    except DataError as error:
        raise DataError(f"{error}; the test split of {package.uri} is rebuilt from its training data: "
                        f"pass --dataset=URI where that data is now") from None
    _, content_sha256 = storage.dataset_checksums(files)
    if content_sha256 != metadata["content_sha256"]:
        recorded = ", ".join(f["name"] for f in metadata["files"][:3])
        raise DataError(f"dataset {uri} is not the data {package.uri} was trained on (content sha256 "
                        f"{content_sha256[:12]}…, the zip records {metadata['content_sha256'][:12]}… of "
                        f"{len(metadata['files'])} file(s): {recorded}), so its test split would be other "
                        f"rows; pass --dataset=URI of the training data")
    loaded = load_rows(files, config)
    test = loaded.take(split_rows(loaded, config)["test"])
    if len(test.label) != metadata["rows"]["test"]:  # same files and config: only a changed split rule
        raise DataError(f"the test split rebuilt from {uri} has {len(test.label)} rows, the zip records "
                        f"{metadata['rows']['test']}: this netfab splits differently from the one that "
                        f"trained {package.uri}; optimise it with that version")
    return SplitRows(uri, files, raw_columns(test), test.label)


def dataset_rows(dataset_uri: str, config, labelled: bool = True) -> SplitRows:
    """Every row of `dataset_uri` (no sampling), the columns `config` reads; labelled=False: no label
    needed (labels are NaN)."""
    import dataclasses

    from data.loading import load_rows

    files = storage.dataset_files(dataset_uri)
    loaded = load_rows(files, dataclasses.replace(config, sample_rows=0), labelled)
    return SplitRows(dataset_uri, files, raw_columns(loaded), loaded.label)


def raw_columns(loaded) -> dict[str, np.ndarray]:
    """Loaded rows (data.loading.LoadedRows) as raw columns: strings ("" for null), float32 (NaN for null)."""
    columns = {name: np.asarray(strings.values, dtype=object)[strings.codes]
               for name, strings in loaded.strings.items()}
    columns.update(loaded.numbers)
    return columns
