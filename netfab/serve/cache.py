"""An LRU cache of predictions keyed by a row's contents (its checked feature values).

    cache = PredictionCache(capacity=100_000)
    scores, missing, keys = cache.lookup(columns)   # missing: indices of rows not cached
    cache.store([keys[i] for i in missing], model_scores_of_the_missing_rows)

Keys are tuples of the row's values after checking (nulls already filled), so the row form and
the columnar form share entries, and the key order is the schema's, not the client's. The
server clears the cache when it swaps models: a score belongs to one model version.
Used from the event loop only, so it needs no lock.
"""
import collections

import numpy as np


class PredictionCache:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: collections.OrderedDict[tuple, float] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _keys(columns: dict[str, np.ndarray]) -> list[tuple]:
        return list(zip(*(column.tolist() for column in columns.values())))

    def lookup(self, columns: dict[str, np.ndarray], classes: int = 0) -> tuple[np.ndarray, list[int], list[tuple]]:
        """Scores of the cached rows (NaN elsewhere), the indices of the rows not cached, all keys;
        classes: the width of a per-class model's rows (0: a score per row)."""
        keys = self._keys(columns)
        scores = np.full((len(keys), classes) if classes else len(keys), np.nan, dtype=np.float32)
        missing = []
        for i, key in enumerate(keys):
            score = self._entries.get(key)
            if score is None:
                missing.append(i)
            else:
                scores[i] = score
                self._entries.move_to_end(key)
        return scores, missing, keys

    def store(self, keys: list[tuple], scores) -> None:
        for key, score in zip(keys, scores.tolist()):
            self._entries[key] = score
            self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
