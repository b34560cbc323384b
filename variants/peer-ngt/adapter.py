"""annvil adapter for Yahoo Japan's NGT (PyPI ngt, module ngtpy): its
ANNG graph (built by incremental insertion, with NGT's tree for seeds), and
ONNG, the ANNG reshaped by NGT's graph optimizer (out/in-degree adjustment
and shortcut reduction), as ann-benchmarks' NGT-onng builds it with the
`ngt` command-line tool."""

import os
import shutil
import tempfile

import ngtpy
import numpy as np

BUILD_PARAMS = {
    "graph": str,
    "edge_size": int,
    "outdegree": int,
    "indegree": int,
}
# `range_coefficient`: 1 + NGT's search epsilon (the search range
# coefficient: how far beyond the current k-th distance the search goes),
# as ann-benchmarks sweeps it. `edge_size`: edges explored per node (NGT's
# edge_size_for_search; -2 takes the index's own setting, as
# ann-benchmarks does).
SEARCH_PARAMS = {"range_coefficient": float, "edge_size": int}

# Angular data comes unit-normalised: L2 orders it as cosine does.
DISTANCES = {"euclidean": "L2", "angular": "L2", "ip": "Inner Product"}


def build(base, metric, params, threads):
    n, dim = base.shape
    graph = params.get("graph", "onng")
    if graph not in ("anng", "onng"):
        raise ValueError(f"graph must be anng or onng, not {graph!r}")
    # NGT indexes live in directories: a private one under the worker's
    # scratch TMPDIR, removed when the index is.
    workdir = tempfile.mkdtemp(prefix="annvil-ngt-")
    anng = os.path.join(workdir, "anng")
    ngtpy.create(
        anng,
        dim,
        edge_size_for_creation=params.get("edge_size", 100),
        edge_size_for_search=40,
        distance_type=DISTANCES[metric],
        object_type="Float",
    )
    index = ngtpy.Index(anng, log_disabled=True)
    index.batch_insert(np.array(base, dtype=np.float32), num_threads=threads)
    index.save()
    index.close()
    path = anng
    if graph == "onng":
        path = os.path.join(workdir, "onng")
        optimizer = ngtpy.Optimizer(
            num_of_outgoings=params.get("outdegree", 10),
            num_of_incomings=params.get("indegree", 120),
            log_disabled=True,
        )
        # The graph reshaping only: NGT's optional search-parameter and
        # accuracy-table tuning serve its own epsilon-free "expected
        # accuracy" mode, which annvil's sweep does not use.
        optimizer.set_processing_modes(
            shortcut_reduction=True,
            search_parameter_optimization=False,
            prefetch_parameter_optimization=False,
            accuracy_table_generation=False,
        )
        optimizer.execute(anng, path)
    return Index(ngtpy.Index(path, read_only=True, log_disabled=True), workdir)


class Index:
    def __init__(self, index, workdir):
        self.index = index
        self.workdir = workdir
        self.epsilon = 0.1
        self.edge_size = -2

    def __del__(self):
        shutil.rmtree(self.workdir, ignore_errors=True)

    def configure(self, params):
        if "range_coefficient" in params:
            coefficient = params["range_coefficient"]
            if not coefficient > 0:
                raise ValueError(f"range_coefficient must be positive, not {coefficient}")
            self.epsilon = coefficient - 1.0
        if "edge_size" in params:
            self.edge_size = params["edge_size"]

    def search(self, query, k):
        return self.index.search(query, k, epsilon=self.epsilon, edge_size=self.edge_size, with_distance=False)
