#!/usr/bin/env python3
"""How faithful is a bridged peer? Measures the library straight through its
own Python binding, with no annvil in the loop, at the build and search
parameters `host evaluate` measured it at, and prints both curves side by
side (QPS ratio at each search setting, recalls beside it).

    host evaluate variants/peer-glass --dataset fashion-mnist
    python3 scripts/peer_fidelity.py variants/peer-glass --dataset fashion-mnist

The library is called exactly as the variant's adapter calls it (the adapter
module is a few lines over the binding: `build`, `configure`, `search`); only
the bridge, the worker and the measurer are taken out. Queries are answered
one at a time in a Python loop on one thread, as ann-benchmarks does, and the
fastest of `--runs` passes over the queries counts. The searching thread is
pinned to one CPU while it is timed, as the host pins its single-thread
runs (`--unpinned` leaves it to the scheduler). Recall@k is scored
against exact neighbours computed here with numpy, as the host and
ann-benchmarks score it: a returned id is a hit when its distance is within
1e-3 of the k-th true distance (of the euclidean distance, not its square).

The script runs itself under the peer's own environment: the venv the host
made for the variant's pins (under target/annvil/python/), found by the pins
it records. Fashion-MNIST is read from its IDX files; an ann-benchmarks .hdf5
file needs h5py in that environment.
"""

import argparse
import gzip
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
EPSILON = 1e-3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variant", type=Path, help="a bridged variant directory, e.g. variants/peer-glass")
    p.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist[:DIR] or an ann-benchmarks .hdf5 file")
    p.add_argument("--results", type=Path, default=Path("annvil-results"), help="the host's results directory")
    p.add_argument("--queries", type=int, default=2000, help="queries per pass (the first N of the test set)")
    p.add_argument("--runs", type=int, default=3, help="passes per search setting; the fastest counts")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--build-threads", type=int, default=2)
    p.add_argument("--build", action="append", default=[], metavar="KEY=VALUE",
                   help="check only the build sets with this build parameter (repeatable)")
    p.add_argument("--unpinned", action="store_true", help="do not pin the searching thread to one CPU")
    args = p.parse_args()
    if any("=" not in choice for choice in args.build):
        p.error(f"--build takes KEY=VALUE (a build parameter, e.g. graph=HNSW), not {args.build}")
    args.build = dict(choice.split("=", 1) for choice in args.build)
    return args


SPEC_ENV = "ANNVIL_FIDELITY_SPEC"


def read_spec(variant):
    """What the check needs from variant.yaml, parsed with PyYAML before the
    re-exec (the peer's venv has no YAML parser; the child gets it as JSON
    in $ANNVIL_FIDELITY_SPEC): the exact pins, the adapter's path and the
    fixed search parameters (as strings, as the host passes them)."""
    if SPEC_ENV in os.environ:
        return json.loads(os.environ[SPEC_ENV])
    path = variant / "variant.yaml"
    try:
        import yaml
    except ImportError:
        sys.exit("reading variant.yaml needs PyYAML (scripts/setup installs python3-yaml)")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        sys.exit(f"{path}: {e}")
    python = doc.get("python") or {}
    pins = python.get("requirements")
    if not isinstance(pins, list) or not pins:
        sys.exit(f"{path}: no `python.requirements` list (is it a bridged variant?)")
    if not python.get("adapter"):
        sys.exit(f"{path}: no `python.adapter` entry")
    params = (doc.get("search") or {}).get("params") or {}
    return {
        "requirements": [str(pin) for pin in pins],
        "adapter": str(variant / python["adapter"]),
        "search_params": {str(k): as_param(v) for k, v in params.items()},
    }


def as_param(value):
    """A YAML scalar as the host's parameter string (`true`, not `True`)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def environment(variant, spec):
    """The venv the host made for this variant's pins."""
    pins = "\n".join(spec["requirements"])
    root = ROOT / "target" / "annvil" / "python"
    for marker in sorted(root.glob("*/annvil-complete")):
        if marker.read_text() == pins:
            return marker.parent
    sys.exit(
        f"no Python environment for {variant} under {root}: run "
        f"`host evaluate {variant} ...` first (it makes the environment)"
    )


def reexec_in(venv, spec):
    python = venv / "bin" / "python"
    if Path(sys.prefix).resolve() != venv.resolve():
        os.environ[SPEC_ENV] = json.dumps(spec)
        os.execv(str(python), [str(python), *sys.argv])


def read_idx(path):
    import numpy as np

    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape[0], -1)


def load(spec):
    """(name, base, queries, metric) with angular data unit-normalised."""
    import numpy as np

    if spec.startswith("fashion-mnist"):
        folder = Path(spec.split(":", 1)[1]) if ":" in spec else FASHION_DIR
        base = read_idx(folder / "train-images-idx3-ubyte.gz").astype(np.float32)
        queries = read_idx(folder / "t10k-images-idx3-ubyte.gz").astype(np.float32)
        return "fashion-mnist-784-euclidean", base, queries, "euclidean"
    if spec.endswith(".hdf5"):
        try:
            import h5py
        except ImportError:
            sys.exit(f"--dataset {spec}: reading .hdf5 needs h5py in {sys.prefix} (pip install h5py there)")
        with h5py.File(spec, "r") as f:
            metric = f.attrs.get("distance", "euclidean")
            metric = metric.decode() if isinstance(metric, bytes) else metric
            base = np.asarray(f["train"], dtype=np.float32)
            queries = np.asarray(f["test"], dtype=np.float32)
        if metric in ("angular", "cosine"):
            base /= np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
            queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
            metric = "angular"
        return Path(spec).stem, base, queries, metric
    sys.exit(f"--dataset {spec}: expected fashion-mnist[:DIR] or a .hdf5 file")


def distances(base, queries, metric):
    """Exact distances in float64 (squared for euclidean): float32 would
    round Fashion-MNIST's squared distances by more than the hit threshold's
    margin."""
    import numpy as np

    base = base.astype(np.float64, copy=False)
    queries = queries.astype(np.float64, copy=False)
    if metric == "angular":
        return 1.0 - queries @ base.T
    return (queries * queries).sum(1)[:, None] - 2.0 * queries @ base.T + (base * base).sum(1)[None, :]


def kth_distances(base, queries, metric, k):
    """The exact k-th nearest distance of every query (chunked)."""
    import numpy as np

    base = base.astype(np.float64)
    out = []
    for start in range(0, len(queries), 256):
        d = distances(base, queries[start : start + 256], metric)
        out.append(np.partition(d, k - 1, axis=1)[:, k - 1])
    return np.concatenate(out)


def hit_threshold(kth, metric):
    """The largest distance that counts as a hit: ann-benchmarks' epsilon
    added to the euclidean distance (these are squared) or to the angular
    distance."""
    if metric == "angular":
        return kth + EPSILON
    return (max(kth, 0.0) ** 0.5 + EPSILON) ** 2


def recall(base, queries, metric, found, kth, k):
    import numpy as np

    hits = 0
    for q, answer in enumerate(found):
        # An adapter answers ids, or (ids, distances) as the bridge accepts.
        ids = answer[0] if isinstance(answer, tuple) else answer
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[(ids >= 0) & (ids < len(base))][:k]
        d = distances(base[ids], queries[q : q + 1], metric)[0]
        hits += int((d <= hit_threshold(kth[q], metric)).sum())
    return hits / (len(queries) * k)


def typed(declared, params):
    """String parameters converted by the adapter's declared types, as the
    bridge converts them."""
    def convert(kind, value):
        if kind is bool:
            return {"true": True, "1": True, "false": False, "0": False}[value]
        return kind(value)

    return {key: convert(declared[key], value) for key, value in params.items()}


def host_points(results, variant, dataset):
    """Build sets the host measured of the variant's newest version (its most
    recently measured content hash; older versions' rows stay in the database):
    {build params json: [(search params, recall, qps)]}."""
    db = results / "results.sqlite"
    if not db.is_file():
        sys.exit(f"{db}: no results database (run host evaluate first, or pass --results)")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT e.build_params_json, p.search_params_json, p.recall, p.qps FROM evaluations e "
        "JOIN sweep_points p ON p.evaluation_id = e.id WHERE e.variant_name = ?1 AND e.status = 'ok' "
        "AND e.dataset_name LIKE ?2 AND e.mode = 'single' AND e.variant_hash = ("
        "SELECT variant_hash FROM evaluations WHERE variant_name = ?1 AND status = 'ok' "
        "AND dataset_name LIKE ?2 AND mode = 'single' ORDER BY started_at DESC LIMIT 1) "
        "ORDER BY e.id, p.recall",
        (variant, dataset + "%"),
    ).fetchall()
    if not rows:
        sys.exit(f"{db}: no successful single-thread evaluation of {variant} on {dataset}")
    sets = {}
    for build, search, rec, qps in rows:
        sets.setdefault(build, []).append((json.loads(search), rec, qps))
    return sets


def main():
    args = parse_args()
    variant = args.variant.resolve()
    spec = read_spec(variant)
    reexec_in(environment(variant, spec), spec)

    import importlib.util

    import numpy as np

    module = importlib.util.spec_from_file_location("annvil_adapter", spec["adapter"])
    adapter = importlib.util.module_from_spec(module)
    module.loader.exec_module(adapter)

    name, base, queries, metric = load(args.dataset)
    queries = np.ascontiguousarray(queries[: args.queries])
    sets = host_points(args.results, variant.name, name)
    sets = {b: p for b, p in sets.items() if all(json.loads(b).get(k) == v for k, v in args.build.items())}
    if not sets:
        sys.exit(f"{args.results}: no build set of {variant.name} on {name} has {args.build}")
    kth = kth_distances(base, queries, metric, args.k)
    print(f"{variant.name} on {name}: {len(base)} base, {len(queries)} queries, k={args.k}, "
          f"fastest of {args.runs} passes, one thread; host figures from {args.results}")
    allowed = os.sched_getaffinity(0)
    timed_cpus = allowed if args.unpinned else {max(allowed)}
    ratios = []
    for build_json, points in sets.items():
        build = json.loads(build_json)
        build = typed(adapter.BUILD_PARAMS, build)
        started = time.perf_counter()
        os.sched_setaffinity(0, allowed)
        index = adapter.build(base, metric, build, args.build_threads)
        os.sched_setaffinity(0, timed_cpus)
        print(f"\nbuild {build_json}: {time.perf_counter() - started:.1f}s")
        print(f"{'search params':40} {'host recall':>11} {'direct':>8} {'host QPS':>9} {'direct':>8} {'host/direct':>11}")
        for knobs, host_recall, host_qps in points:
            search = {**spec["search_params"], **knobs}
            search = typed(adapter.SEARCH_PARAMS, search)
            if search and hasattr(index, "configure"):
                index.configure(search)
            for q in queries[:100]:  # warm-up
                index.search(q, args.k)
            best = float("inf")
            for _ in range(args.runs):
                found = []
                started = time.perf_counter()
                for q in queries:
                    found.append(index.search(q, args.k))
                best = min(best, time.perf_counter() - started)
            direct_recall = recall(base, queries, metric, found, kth, args.k)
            direct_qps = len(queries) / best
            ratio = host_qps / direct_qps
            if abs(direct_recall - host_recall) <= 0.01:
                ratios.append(ratio)
            print(f"{json.dumps(knobs):40} {host_recall:11.4f} {direct_recall:8.4f} {host_qps:9.0f} "
                  f"{direct_qps:8.0f} {ratio:11.3f}")
    if ratios:
        ratios.sort()
        print(f"\nhost/direct QPS at equal recall (within 0.01), {len(ratios)} settings: "
              f"median {ratios[len(ratios) // 2]:.3f}, lowest {ratios[0]:.3f}")


if __name__ == "__main__":
    main()
