"""annvil adapter for Google's ScaNN (PyPI scann): a k-means partitioning
tree, anisotropic asymmetric-hashing (AH, 4-bit LUT16) scoring of the
searched leaves, and an exact float32 reorder of the best candidates, built
as ann-benchmarks' scann runs build it."""

import numpy as np
import scann

BUILD_PARAMS = {"num_leaves": int, "dims_per_block": int, "avq_threshold": float}
# `leaves_to_search`: partitions scored per query (the adaptive knob);
# `reorder`: AH candidates re-scored exactly (pre_reorder_num_neighbors).
SEARCH_PARAMS = {"leaves_to_search": int, "reorder": int}


def build(base, metric, params, threads):
    n, dim = base.shape
    dot = metric != "euclidean"
    # Small sets (the conformance checks) get at most n / 16 leaves.
    leaves = max(1, min(params.get("num_leaves", 1000), n // 16))
    dims_per_block = params.get("dims_per_block", 2)
    # The anisotropic loss is ScaNN's tool for inner products; for squared
    # L2 ann-benchmarks (and ScaNN's own guidance) leave it off (nan).
    avq = params.get("avq_threshold", 0.2) if dot else float("nan")
    data = np.array(base, dtype=np.float32)  # ScaNN keeps its own copy
    builder = (
        scann.scann_ops_pybind.builder(data, 10, "dot_product" if dot else "squared_l2")
        .tree(
            leaves,
            1,
            training_sample_size=n,
            spherical=metric == "angular",
            quantize_centroids=True,
        )
        .score_ah(dims_per_block, anisotropic_quantization_threshold=avq)
        .reorder(100)
    )
    builder.set_n_training_threads(threads)
    searcher = builder.build()
    searcher.set_num_threads(1)
    return Index(searcher, n, leaves, dot)


class Index:
    def __init__(self, searcher, n, leaves, dot):
        self.searcher = searcher
        # ScaNN answers dot products largest first: negated, they are
        # distances nearest first, as the bridge takes them.
        self.sign = np.float32(-1.0 if dot else 1.0)
        self.n = n
        self.leaves = leaves
        self.leaves_to_search = 1
        self.reorder = 100

    def configure(self, params):
        if "leaves_to_search" in params:
            value = params["leaves_to_search"]
            if value < 1:
                raise ValueError(f"leaves_to_search must be at least 1, not {value}")
            self.leaves_to_search = min(value, self.leaves)
        if "reorder" in params:
            if params["reorder"] < 1:
                raise ValueError(f"reorder must be at least 1, not {params['reorder']}")
            self.reorder = params["reorder"]

    # (ids, distances): the reorder's exact distances (squared L2, or the
    # negated dot product), so the bridge keeps its order and does not
    # measure the answer again.
    def search(self, query, k):
        leaves = self.leaves_to_search
        while True:
            ids, distances = self.searcher.search(query, k, max(self.reorder, k), leaves)
            # The searched leaves may hold fewer than k points (small sets):
            # search again with twice the leaves, as IVF-style searches do.
            if len(ids) >= min(k, self.n) or leaves >= self.leaves:
                return ids, self.sign * distances
            leaves = min(2 * leaves, self.leaves)

    def search_batch(self, queries, k):
        found, scores = self.searcher.search_batched(queries, k, max(self.reorder, k), self.leaves_to_search)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        distances = np.full((len(queries), k), np.inf, dtype=np.float32)
        ids[:, : found.shape[1]] = found
        distances[:, : found.shape[1]] = self.sign * scores
        for row in np.flatnonzero((ids[:, : min(k, self.n)] < 0).any(axis=1)):
            short_ids, short_distances = self.search(queries[row], k)
            ids[row], distances[row] = -1, np.inf
            ids[row, : len(short_ids)] = short_ids
            distances[row, : len(short_distances)] = short_distances
        return ids, distances
