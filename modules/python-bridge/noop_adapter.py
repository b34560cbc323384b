"""The no-op adapter: a "library" that answers every query at once with the
same ids. `host evaluate` serves it through the bridge, in the same worker,
sandbox and mode as the bridged variants it measures, to report what the
bridge itself costs per query (calling into Python, copying the query in,
reading the ids back, ranking them by exact distance)."""

import numpy as np


def build(base, metric, params, threads):
    return Index(len(base))


class Index:
    def __init__(self, count):
        self.count = count
        self.answers = {}

    def configure(self, params):
        pass

    def _ids(self, k):
        if k not in self.answers:
            self.answers[k] = np.arange(min(k, self.count), dtype=np.int64)
        return self.answers[k]

    def search(self, query, k):
        return self._ids(k)

    def search_batch(self, queries, k):
        return np.broadcast_to(self._ids(k), (len(queries), min(k, self.count)))

    def memory_bytes(self):
        return 0
