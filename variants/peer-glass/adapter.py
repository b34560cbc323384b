"""annvil adapter for GLASS (PyPI pyglass-portable, imported as `glass`;
zilliztech's graph library): an HNSW or NSG graph built on exact float32
distances, searched on SQ8U or SQ4U codes (uniform scalar quantization, 8 or
4 bits per dimension) with the candidates re-ranked on float32 vectors."""

import os
import tempfile

import glass
import numpy as np

BUILD_PARAMS = {"graph": str, "R": int, "L": int}
# `ef`: the search's candidate pool size. `quant`: the quantizer the graph
# is traversed with (SQ8U or SQ4U; both searchers are made by the build).
# `distances`: answer GLASS's distances with its ids (the default); false
# answers the ids alone, so the bridge recomputes their distances, as it
# did before commit ad6c54c (the A/B in README.md, answer-forms/).
SEARCH_PARAMS = {"ef": int, "quant": str, "distances": bool}

GRAPHS = ("HNSW", "NSG")
QUANTIZERS = ("SQ8U", "SQ4U")
# Angular data comes unit-normalised: inner product orders it as cosine.
METRICS = {"euclidean": "L2", "angular": "IP", "ip": "IP"}


def build(base, metric, params, threads):
    graph_type = params.get("graph", "HNSW")
    if graph_type not in GRAPHS:
        raise ValueError(f"graph must be HNSW or NSG, not {graph_type!r}")
    space = METRICS[metric]
    data = np.array(base, dtype=np.float32)
    glass.set_num_threads(threads)
    graph = glass.Index(graph_type, space, "FP32", R=params.get("R", 32), L=params.get("L", 200)).build(data)
    # A glass.Searcher takes its graph's adjacency: a second searcher made
    # from the same graph object finds it empty and answers id 0 alone
    # (recall 0). Each quantizer gets its own copy of the built graph,
    # through GLASS's own save and load.
    searchers = {}
    with tempfile.TemporaryDirectory() as scratch:
        saved = os.path.join(scratch, "graph")
        graph.save(saved)
        copies = {quant: glass.Graph(saved) for quant in QUANTIZERS}
    for quant, copy in copies.items():
        searcher = glass.Searcher(copy, data, space, quant, "FP32")
        # GLASS's own tuning of its prefetch settings, on one thread as
        # the searches will run.
        searcher.optimize(1)
        searchers[quant] = searcher
    glass.set_num_threads(1)
    return Index(searchers, len(data))


class Index:
    def __init__(self, searchers, n):
        self.searchers = searchers
        self.n = n
        self.ef = 32
        self.distances = True
        self.searcher = searchers["SQ8U"]
        self.searcher.set_ef(self.ef)

    def configure(self, params):
        # GLASS answers even one query through an OpenMP loop; without this
        # call on the searching thread the worker ran it with a team of two
        # threads, at about 0.8x of GLASS's own speed (README, "Fidelity").
        glass.set_num_threads(1)
        if "quant" in params:
            quant = params["quant"].upper()
            if quant not in self.searchers:
                raise ValueError(f"quant must be SQ8U or SQ4U, not {params['quant']!r}")
            self.searcher = self.searchers[quant]
        if "ef" in params:
            if params["ef"] < 1:
                raise ValueError(f"ef must be at least 1, not {params['ef']}")
            self.ef = params["ef"]
        self.distances = params.get("distances", self.distances)
        self.searcher.set_ef(self.ef)

    # GLASS answers (ids, distances), nearest first (squared L2, or the
    # negated inner product): the bridge keeps its order and distances.
    def search(self, query, k):
        found = self.searcher.search(query, min(k, self.n))
        return found if self.distances else found[0]

    def search_batch(self, queries, k):
        ids, distances = self.searcher.batch_search(queries, min(k, self.n), 1)
        ids = np.asarray(ids).reshape(len(queries), -1)
        distances = np.asarray(distances).reshape(len(queries), -1)
        if ids.shape[1] < k:
            short = ((0, 0), (0, k - ids.shape[1]))
            ids = np.pad(ids, short, constant_values=-1)
            distances = np.pad(distances, short, constant_values=np.inf)
        return (ids, distances) if self.distances else ids
