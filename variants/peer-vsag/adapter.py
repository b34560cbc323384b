"""annvil adapter for Ant Group's VSAG (PyPI pyvsag): its HGraph index, a
hierarchical proximity graph traversed on compressed codes (SQ8 or RaBitQ)
with the results re-ranked on exact float32 vectors (`use_reorder`)."""

import json

import numpy as np
import pyvsag

BUILD_PARAMS = {"quantization": str, "max_degree": int, "ef_construction": int}
# `ef_search`: the candidate list size of the graph search.
SEARCH_PARAMS = {"ef_search": int}

# Angular data comes unit-normalised: inner product orders it as cosine.
METRICS = {"euclidean": "l2", "angular": "ip", "ip": "ip"}
QUANTIZATIONS = ("sq8", "rabitq", "sq8_uniform", "sq4_uniform", "fp32")

pyvsag.set_logger_off()


def build(base, metric, params, threads):
    n, dim = base.shape
    quantization = params.get("quantization", "sq8")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
    config = {
        "dtype": "float32",
        "metric_type": METRICS[metric],
        "dim": dim,
        "index_param": {
            "base_quantization_type": quantization,
            "max_degree": params.get("max_degree", 32),
            "ef_construction": params.get("ef_construction", 300),
            "use_reorder": True,
            "precise_quantization_type": "fp32",
            "build_thread_count": threads,
        },
    }
    index = pyvsag.Index("hgraph", json.dumps(config))
    # pyvsag aborts the process on a read-only array: it gets a (temporary,
    # writable) copy of the base vectors, which it encodes into its own
    # storage. Ids are the row numbers (annvil ids).
    index.build(
        vectors=np.array(base, dtype=np.float32).reshape(-1),
        ids=np.arange(n, dtype=np.int64),
        num_elements=n,
        dim=dim,
    )
    return Index(index)


class Index:
    def __init__(self, index):
        self.index = index
        self.parameters = json.dumps({"hgraph": {"ef_search": 100}})

    def configure(self, params):
        if "ef_search" in params:
            ef = params["ef_search"]
            if ef < 1:
                raise ValueError(f"ef_search must be at least 1, not {ef}")
            self.parameters = json.dumps({"hgraph": {"ef_search": ef}})

    def search(self, query, k):
        # (ids, distances): VSAG's distances after its fp32 reorder are
        # exact and increasing, so the bridge keeps them rather than
        # measuring the answer again (work its own binding does not do).
        return self.index.knn_search(query, k, self.parameters)
