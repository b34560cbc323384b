"""annvil adapter for faiss (PyPI faiss-cpu): IndexHNSWFlat, or an IVF
index with 4-bit fast-scan PQ codes and an exact (flat) refine."""

import faiss
import numpy as np

BUILD_PARAMS = {"index": str, "M": int, "ef_construction": int, "nlist": int}
# `effort` is efSearch for HNSW and nprobe for IVF; `reorder` is the number
# of fast-scan candidates the IVF refine re-scores exactly, per result.
SEARCH_PARAMS = {"effort": int, "reorder": int}


def build(base, metric, params, threads):
    faiss.omp_set_num_threads(threads)
    dim = base.shape[1]
    space = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
    kind = params.get("index", "hnsw")
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params.get("M", 32), space)
        index.hnsw.efConstruction = params.get("ef_construction", 40)
    elif kind == "ivf-fastscan":
        nlist = params.get("nlist", 1024)
        # PQ with 2 dimensions per 4-bit code (rounded down to an even count
        # of codes), the fast-scan layout, and a flat refine.
        codes = max(2, (dim // 2) // 2 * 2)
        inner = faiss.index_factory(dim, f"IVF{nlist},PQ{codes}x4fs", space)
        index = faiss.IndexRefineFlat(inner)
    else:
        raise ValueError(f"index must be hnsw or ivf-fastscan, not {kind!r}")
    data = np.ascontiguousarray(base, dtype=np.float32)
    index.train(data)
    index.add(data)
    faiss.omp_set_num_threads(1)
    return Index(index, kind)


class Index:
    def __init__(self, index, kind):
        self.index = index
        self.kind = kind

    def configure(self, params):
        effort = params.get("effort")
        if self.kind == "hnsw":
            if effort is not None:
                self.index.hnsw.efSearch = effort
        else:
            if effort is not None:
                faiss.extract_index_ivf(self.index.base_index).nprobe = effort
            if "reorder" in params:
                self.index.k_factor = float(params["reorder"])

    def search(self, query, k):
        return self.index.search(query.reshape(1, -1), k)[1][0]

    def search_batch(self, queries, k):
        return self.index.search(queries, k)[1]
