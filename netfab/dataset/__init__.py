"""The dataset wing, `fab dataset`: a SQL template + parameters -> an engine -> NDJSON shards at a URI.

    make.py            make_dataset: load and bind the query, choose the engine, write the shards and _dataset.json
    query.py           what an engine returns (EngineResult) and the shard names both engines write
    bigquery_engine.py production: dry run, query into an expiring table, extract job to gs://
    duckdb_engine.py   offline: the same SQL transpiled by sqlglot, run by DuckDB over a local warehouse

Imports the core and the storage wing only.
"""
