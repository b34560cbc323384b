"""annvil adapter for faiss (PyPI faiss-cpu): IndexHNSWFlat. (The IVF
fast-scan index with an exact refine is peer-faiss-ivf.)"""

import faiss
import numpy as np

BUILD_PARAMS = {"M": int, "ef_construction": int}
# `effort` is efSearch.
SEARCH_PARAMS = {"effort": int}


def build(base, metric, params, threads):
    faiss.omp_set_num_threads(threads)
    dim = base.shape[1]
    space = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
    index = faiss.IndexHNSWFlat(dim, params.get("M", 32), space)
    index.hnsw.efConstruction = params.get("ef_construction", 40)
    data = np.ascontiguousarray(base, dtype=np.float32)
    index.add(data)
    faiss.omp_set_num_threads(1)
    return Index(index, space == faiss.METRIC_INNER_PRODUCT)


class Index:
    def __init__(self, index, similarity):
        self.index = index
        # faiss answers inner products largest first: negated, they are
        # distances nearest first, as the bridge takes them.
        self.sign = -1.0 if similarity else 1.0

    def configure(self, params):
        effort = params.get("effort")
        if effort is not None:
            self.index.hnsw.efSearch = effort

    # (ids, distances): faiss's own exact distances (squared L2, or the
    # negated inner product), so the bridge keeps its order and does not
    # measure the answer again.
    def search(self, query, k):
        distances, ids = self.index.search(query.reshape(1, -1), k)
        return ids[0], self.sign * distances[0]

    def search_batch(self, queries, k):
        # OpenMP's thread count is per calling thread: the build set 1 on
        # its own thread, and batches come from the worker's threads.
        faiss.omp_set_num_threads(1)
        distances, ids = self.index.search(queries, k)
        return ids, self.sign * distances
