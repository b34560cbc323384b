"""annvil adapter for PyNNDescent (PyPI pynndescent): the NNDescent k-NN
graph (random-projection-tree initialisation, nearest-neighbour descent),
turned by `prepare()` into its search index (diversified, degree-pruned
search graph plus a search tree), searched by its epsilon-bounded graph
search. Numba compiles the code on first use: the build pays for it."""

import numba
import numpy as np
import pynndescent

BUILD_PARAMS = {
    "n_neighbors": int,
    "leaf_size": int,
    "pruning_degree_multiplier": float,
    "diversify_prob": float,
}
# `epsilon`: how far beyond the current k-th distance the search keeps
# expanding (PyNNDescent's accuracy/speed trade-off).
SEARCH_PARAMS = {"epsilon": float}

# ann-benchmarks' mapping: angular (unit vectors) as the dot metric.
METRICS = {"euclidean": "euclidean", "angular": "dot", "ip": "dot"}


def build(base, metric, params, threads):
    n = base.shape[0]
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    index = pynndescent.NNDescent(
        np.array(base, dtype=np.float32),
        metric=METRICS[metric],
        n_neighbors=min(params.get("n_neighbors", 30), n - 1),
        leaf_size=params.get("leaf_size"),
        pruning_degree_multiplier=params.get("pruning_degree_multiplier", 1.5),
        diversify_prob=params.get("diversify_prob", 1.0),
        low_memory=True,
        compressed=True,
        n_jobs=threads,
        random_state=42,
    )
    index.prepare()
    numba.set_num_threads(1)
    result = Index(index, n)
    # The query path is compiled on its first call: make that call here, so
    # the timed runs do not pay for the compilation.
    result.search_batch(np.array(base[:1], dtype=np.float32), 10)
    result.search(np.array(base[0], dtype=np.float32), 10)
    return result


class Index:
    def __init__(self, index, n):
        self.index = index
        self.n = n
        self.epsilon = 0.1

    def configure(self, params):
        if "epsilon" in params:
            if not params["epsilon"] >= 0:
                raise ValueError(f"epsilon must be at least 0, not {params['epsilon']}")
            self.epsilon = params["epsilon"]

    def search(self, query, k):
        ids, distances = self.search_batch(query.reshape(1, -1), k)
        return ids[0], distances[0]

    def search_batch(self, queries, k):
        # (ids, distances): the search computes both, and the bridge keeps
        # the library's own distances rather than measuring the answer
        # again (work its own binding does not do).
        found, distances = self.index.query(queries, k=min(k, self.n), epsilon=self.epsilon)
        if found.shape[1] == k:
            return found, distances
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        ids[:, : found.shape[1]] = found
        padded = np.full((len(queries), k), np.inf, dtype=np.float32)
        padded[:, : found.shape[1]] = distances
        return ids, padded
