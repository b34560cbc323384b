"""annvil adapter for faiss (PyPI faiss-cpu): an inverted-file index whose
lists hold 4-bit fast-scan PQ codes, behind an exact (flat) refine
(IndexRefineFlat), as ann-benchmarks' faiss-ivfpqfs."""

import faiss
import numpy as np

BUILD_PARAMS = {"nlist": int}
# `nprobe`: inverted lists visited per query (the knob). `reorder`: the
# refine's k_factor, i.e. fast-scan candidates per requested neighbour that
# are re-scored with exact distances.
SEARCH_PARAMS = {"nprobe": int, "reorder": float}


def _subquantizers(dim):
    """The number of PQ codes: two dimensions per 4-bit code (dim / 2) when
    that divides dim, else the largest divisor of dim below dim / 2 (faiss's
    PQ needs equal sub-vectors)."""
    for m in range(max(1, dim // 2), 0, -1):
        if dim % m == 0:
            return m
    return 1


def build(base, metric, params, threads):
    faiss.omp_set_num_threads(threads)
    n, dim = base.shape
    space = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
    nlist = params.get("nlist", 1024)
    if nlist < 1:
        raise ValueError(f"nlist must be at least 1, not {nlist}")
    # k-means needs points to spread over the lists: at most n / 16 lists
    # (only small sets, such as the conformance checks, are affected).
    nlist = max(1, min(nlist, n // 16))
    m = _subquantizers(dim)
    inner = faiss.index_factory(dim, f"IVF{nlist},PQ{m}x4fs", space)
    index = faiss.IndexRefineFlat(inner)
    data = np.ascontiguousarray(base, dtype=np.float32)
    index.train(data)
    index.add(data)
    faiss.omp_set_num_threads(1)
    return Index(index, nlist, space == faiss.METRIC_INNER_PRODUCT)


class Index:
    def __init__(self, index, nlist, similarity):
        self.index = index
        self.ivf = faiss.extract_index_ivf(index.base_index)
        self.nlist = nlist
        # The refine answers inner products largest first: negated, they
        # are distances nearest first, as the bridge takes them.
        self.sign = -1.0 if similarity else 1.0

    def configure(self, params):
        if "nprobe" in params:
            nprobe = params["nprobe"]
            if nprobe < 1:
                raise ValueError(f"nprobe must be at least 1, not {nprobe}")
            self.ivf.nprobe = min(nprobe, self.nlist)
        if "reorder" in params:
            reorder = params["reorder"]
            if reorder < 1:
                raise ValueError(f"reorder must be at least 1, not {reorder}")
            self.index.k_factor = reorder

    # (ids, distances): the refine's exact distances (squared L2, or the
    # negated inner product), so the bridge keeps its order and does not
    # measure the answer again.
    def search(self, query, k):
        ids, distances = self.search_batch(query.reshape(1, -1), k)
        return ids[0], distances[0]

    def search_batch(self, queries, k):
        # OpenMP's thread count is per calling thread: the build set 1 on
        # its own thread, and searches come from the worker's threads.
        faiss.omp_set_num_threads(1)
        distances, ids = self.index.search(queries, k)
        # The nprobe nearest lists may hold fewer than k vectors (small sets,
        # small nprobe): faiss then pads with -1. Those queries are searched
        # again with twice the lists, until they are full or every list is
        # visited, as an IVF search that keeps probing until it has k
        # candidates would.
        wanted = min(k, self.index.ntotal)
        short = np.flatnonzero((ids[:, :wanted] < 0).any(axis=1))
        nprobe = self.ivf.nprobe
        while short.size and nprobe < self.nlist:
            nprobe = min(2 * nprobe, self.nlist)
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            refine = faiss.IndexRefineSearchParameters(k_factor=self.index.k_factor, base_index_params=params)
            distances[short], ids[short] = self.index.search(queries[short], k, params=refine)
            short = short[(ids[short, :wanted] < 0).any(axis=1)]
        return ids, self.sign * distances
