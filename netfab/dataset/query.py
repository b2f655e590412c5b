"""What an engine hands back to `fab dataset`, and the shard names both engines write.

Its own module so that make.py can import the engines and the engines these types, with no circle.
"""
import dataclasses


def shard_name(index: int, compressed: bool) -> str:
    """part-000000000000.json: the names BigQuery's wildcard export gives, for both engines."""
    return f"part-{index:012d}.json{'.gz' if compressed else ''}"


@dataclasses.dataclass(frozen=True)
class EngineResult:
    shards: list[str]  # URIs, in order
    rows: int
    job_ids: list[str]
    bytes_processed: int | None  # what the query reads (BigQuery's dry run; table files for duckdb)
    details: dict  # engine-specific: project, destination table, warehouse, transpiled SQL ...
