"""annvil adapter for Spotify's Voyager (PyPI voyager): an HNSW index
(hnswlib's algorithm in Voyager's own C++ core), 32-bit float storage."""

import numpy as np
import voyager

BUILD_PARAMS = {"M": int, "ef_construction": int}
# `ef`: the search depth (candidate list size) of each query.
SEARCH_PARAMS = {"ef": int}

SPACES = {
    "euclidean": voyager.Space.Euclidean,
    # The host hands angular data already unit-normalised: inner product
    # orders it as cosine does, without Voyager normalising again.
    "angular": voyager.Space.InnerProduct,
    "ip": voyager.Space.InnerProduct,
}


def build(base, metric, params, threads):
    n, dim = base.shape
    index = voyager.Index(
        SPACES[metric],
        num_dimensions=dim,
        M=params.get("M", 12),
        ef_construction=params.get("ef_construction", 200),
        random_seed=1,
        max_elements=n,
        storage_data_type=voyager.StorageDataType.Float32,
    )
    # Voyager copies the vectors, but its binding takes only a writable
    # array: a temporary copy of the read-only base. Ids are the row numbers.
    index.add_items(np.array(base, dtype=np.float32), ids=list(range(n)), num_threads=threads)
    return Index(index, n)


class Index:
    def __init__(self, index, n):
        self.index = index
        self.n = n
        self.ef = 10

    def configure(self, params):
        if "ef" in params:
            if params["ef"] < 1:
                raise ValueError(f"ef must be at least 1, not {params['ef']}")
            self.ef = params["ef"]

    def _query(self, queries, k):
        # Voyager raises when the graph yields fewer than k results (as
        # hnswlib does); k is at most the number of vectors, and a search
        # that comes back short is repeated deeper (ef doubled) before
        # giving up with what the whole graph can reach.
        k = min(k, self.n)
        ef = max(self.ef, k)
        while True:
            try:
                ids, distances = self.index.query(queries, k=k, num_threads=1, query_ef=ef)
                return ids.astype(np.int64), distances
            except RuntimeError:
                if ef >= self.n:
                    raise
                ef = min(2 * ef, self.n)

    def search(self, query, k):
        return self._query(query, k)

    def search_batch(self, queries, k):
        ids, distances = self._query(queries, k)
        if ids.shape[1] < k:
            short = ((0, 0), (0, k - ids.shape[1]))
            ids = np.pad(ids, short, constant_values=-1)
            distances = np.pad(distances, short, constant_values=np.inf)
        return ids, distances
