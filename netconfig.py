"""The training configuration: every key, its type and its default, in one flat block.

Three levels, merged in this order (see docs/config.md):
  1. the defaults below,
  2. the variant's deltas in variant_config.json,
  3. NET_<KEY> environment variables for one run, e.g. NET_LEARNING_RATE=0.003 fab train.

    fab config --variant=rnn_v1      # the effective config and where each value came from
"""
from dataclasses import dataclass

DEFAULT_VARIANT = "deep_v1"  # what `fab train` trains when no --variant is given


@dataclass(frozen=True)
class NetConfig:
    # --- architecture ------------------------------------------------------------------
    network: str = "deep_v1"  # a name in models.REGISTRY: deep_v1 | rnn_v1 | dcn_v2
    hidden_units: tuple[int, ...] = (64, 32)  # widths of the MLP tower, input to output
    dropout: float = 0.1  # after each hidden layer, in [0, 1)
    embedding_dim: int = 0  # per categorical; 0 = sized by cardinality (docs/config.md)
    embedding_dim_max: int = 24  # cap for the cardinality rule
    text_embedding_dim: int = 16  # per text token
    rnn_cell: str = "gru"  # gru | lstm (rnn_v1)
    rnn_units: int = 32  # recurrent state size (rnn_v1)
    cross_layers: int = 2  # cross layers (dcn_v2): l layers model feature crosses up to degree l + 1
    cross_rank: int = 0  # rank of each cross layer's matrix (dcn_v2); 0 = full rank

    # --- data --------------------------------------------------------------------------
    task: str = "binary"  # binary | multiclass | multilabel | regression (docs/data.md: what the label holds)
    label_column: str = "booked"  # the target: 0/1, a class, a list of tags or a number, by task
    top_k: int = 3  # multiclass: top-k accuracy counts a row right when its class is among the k likeliest
    multilabel_threshold: float = 0.5  # multilabel: a tag is predicted at this probability (F1), (0, 1)
    weight_column: str = ""  # a number >= 0 per row scaling its training loss; "" = every row counts 1
    id_column: str = ""  # carried beside predictions (fab predict), never a feature; "" = none: the row number
    categorical_columns: tuple[str, ...] = (
        "country", "language", "device", "day_of_week", "season", "item_id")
    list_columns: tuple[str, ...] = ()  # list-valued categoricals (tags, genres): a bag of embeddings per row
    numeric_columns: tuple[str, ...] = (
        "price", "rating", "distance_km", "nights", "lead_time_days")
    text_columns: tuple[str, ...] = ("title",)  # free text, each tokenised inside the model with its own
    # vocabulary; () = none (NET_TEXT_COLUMNS=)
    max_vocab_size: int = 5000  # per categorical, most frequent first; the rest are OOV
    min_category_count: int = 1  # rarer values map to the OOV bucket
    text_vocab_size: int = 2000  # tokens kept per text column, most frequent first
    list_max_items: int = 16  # items kept per row of a list column, in order; the rest are dropped
    text_max_tokens: int = 12  # text length in tokens, per column: longer is cut, shorter is padded
    split: str = "random"  # random (seeded) | by_column: rows ordered by split_column, the latest validate and test
    split_column: str = ""  # by_column: a time (ISO date, timestamp) or group column; rows sharing a value stay together
    validation_fraction: float = 0.1  # share for early stopping and the best epoch (and tuning), (0, 1)
    test_fraction: float = 0.1  # share scored once, with the best epoch's weights, (0, 1)
    sample_rows: int = 0  # train on a uniform sample of this many rows; 0 = all rows

    # --- dataset (fab dataset; docs/dataset.md) ------------------------------------------
    query: str = "training_rows"  # data/queries/<name>.sql, BigQuery dialect, @named parameters
    export_compression: str = "none"  # none | gzip: shards part-*.json or part-*.json.gz
    warehouse: str = "data/warehouse"  # duckdb engine: folder of <dataset>.<table>.parquet|.ndjson
    bq_project: str = ""  # GCP project of the BigQuery jobs; "" = $GOOGLE_CLOUD_PROJECT, else duckdb
    bq_location: str = "US"  # BigQuery location of the jobs and of the scratch dataset
    bq_scratch_dataset: str = "netfab_scratch"  # BigQuery dataset holding the query's result table
    bq_table_expiration_hours: int = 24  # the result table is deleted by BigQuery after this

    # --- optimisation ------------------------------------------------------------------
    learning_rate: float = 0.003  # Adam step size
    batch_size: int = 1024  # rows per step; chosen by benchmarks/batch_size.py (docs/training.md)
    steps_per_execution: int = 16  # steps Keras runs per call into TensorFlow: fewer Python round trips
    epochs: int = 20  # upper bound; early stopping usually ends sooner
    early_stopping_patience: int = 4  # epochs without a better validation figure (by task); 0 = off
    seed: int = 42  # data split, shuffling and weights: same seed, same metrics
