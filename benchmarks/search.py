"""Search at scale: recall@10 against exact search, latency through the server, build and
compaction time and resident memory, with and without filters; image->image precision on the
real pets; and the ANN engines compared on a sample.

Synthetic catalog: `--vectors` 512-d vectors in `--batches` batches, clustered (unit centres
plus per-cluster noise), written exactly as the pipeline writes them (catalog, embeddings,
metadata, one `similarity_index` shard per batch) under a scratch home; then the
`search_compaction` service, then a server subprocess queried by image id over HTTP.

    nice -n 10 .venv/bin/python benchmarks/search.py --vectors 100000 --batches 200
    nice -n 10 .venv/bin/python benchmarks/search.py                  # 1M in 2,000 batches
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.serve_helpers import free_port, percentiles
from ml_platform.domain import Focus, ImageRecord
from ml_platform.learning.ann_index import AnnIndex, l2_normalise
from ml_platform.learning.ann_search import RowFilter, search_segments
from ml_platform.services.search_compaction import CompactionConfig, compact
from ml_platform.settings import Settings
from ml_platform.store.ann import write_shard
from ml_platform.store.layout import Layout
from ml_platform.store.search_cache import IndexCache

FOCUS = Focus.from_key("whole_image__embed_clip_vit_b_32")
BASE = datetime(2024, 1, 1, tzinfo=UTC)
PETS = 1000  # pet_id = image % PETS: a pet filter keeps 0.1% of the catalog


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vectors", type=int, default=1_000_000)
    p.add_argument("--batches", type=int, default=2000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--centres", type=int, default=5000)
    p.add_argument(
        "--families",
        type=int,
        default=0,
        help="group the centres into this many families (overlapping clusters, harder); 0: none",
    )
    p.add_argument("--skip-server", action="store_true")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--codec", default="fp16")
    p.add_argument("--nprobes", default="64,128,256,512")
    p.add_argument("--engines-sample", type=int, default=100_000, help="0: skip the engines")
    p.add_argument("--work", type=Path, default=None, help="scratch home (default: a temp dir)")
    p.add_argument("--skip-pets", action="store_true")
    return p.parse_args()


def synthetic(args: argparse.Namespace) -> NDArray[np.float32]:
    """Unit vectors around `centres` random directions, each cluster with its own spread."""
    rng = np.random.default_rng(0)
    centres = l2_normalise(rng.standard_normal((args.centres, args.dim)))
    if getattr(args, "families", 0):  # centres near their family's: neighbouring clusters overlap
        family = l2_normalise(rng.standard_normal((args.families, args.dim)))
        which = np.arange(args.centres) % args.families
        centres = l2_normalise(family[which] + 0.7 * centres)
    spread = rng.uniform(0.6, 1.2, args.centres).astype(np.float32)
    out = np.empty((args.vectors, args.dim), np.float32)
    for start in range(0, args.vectors, 100_000):
        n = min(100_000, args.vectors - start)
        which = rng.integers(0, args.centres, n)
        noise = rng.standard_normal((n, args.dim)).astype(np.float32) / np.sqrt(args.dim)
        out[start : start + n] = l2_normalise(centres[which] + spread[which, None] * noise)
    return out


def write_catalog(layout: Layout, x: NDArray[np.float32], batches: int) -> list[float]:
    """Each batch as its run leaves it; returns the seconds each batch's shard took."""
    from ml_platform.store.tables import CATALOG_COLUMNS

    per = len(x) // batches
    shard_s = []
    for b in range(batches):
        ids = np.arange(b * per, (b + 1) * per if b < batches - 1 else len(x), dtype=np.int64)
        key = f"batch-{b:05d}"
        created = [(BASE + timedelta(minutes=int(i))).isoformat() for i in ids]
        pets = (ids % PETS).tolist()
        catalog = {c: [None] * len(ids) for c in CATALOG_COLUMNS}
        catalog.update(
            image_id=ids.tolist(),
            status=["ok"] * len(ids),
            created_at=created,
            pet_id=pets,
            collection_ids=[[]] * len(ids),
            rejected_collection_ids=[[]] * len(ids),
        )
        layout.store.write_parquet(layout.catalog(key), pa.table(catalog))
        layout.store.write_parquet(layout.embeddings(FOCUS, key), embeddings_table(ids, x[ids]))
        records = [ImageRecord(int(i), "", BASE, int(i % PETS)) for i in ids]
        layout.metadata().register_batch(key, records)
        start = time.perf_counter()
        shard = AnnIndex.create(x.shape[1])  # what similarity_index does for the batch
        shard.add(ids, x[ids])
        write_shard(layout, FOCUS, key, shard)
        shard_s.append(time.perf_counter() - start)
    return shard_s


def embeddings_table(ids: NDArray[np.int64], x: NDArray[np.float32]) -> pa.Table:
    """The embeddings asset's table (store.vectors), built column-wise for speed."""
    n, dim = x.shape
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    same = {
        "derivative_type": FOCUS.derivative_type.value,
        "embedding_type": FOCUS.embedding_type,
        "embedder_id": "synthetic",
        "embedder_revision": "v1",
        "weights": "pretrained",
    }
    columns = {
        "image_id": pa.array(ids, pa.int64()),
        "status": pa.array(["ok"] * n),
        "error": pa.nulls(n, pa.string()),
    }
    columns |= {k: pa.array([v] * n) for k, v in same.items()}
    columns["vector"] = pa.ListArray.from_arrays(offsets, pa.array(x.reshape(-1)))
    return pa.table(columns, metadata={"dimensionality": str(dim)})


def exact(
    x: NDArray[np.float32], queries: NDArray[np.int64], mask: NDArray[np.bool_] | None, k: int = 10
) -> list[list[int]]:
    """Brute-force top-k per query id, the query left out, among `mask`."""
    out = []
    for start in range(0, len(queries), 50):
        q = queries[start : start + 50]
        sims = x @ x[q].T
        if mask is not None:
            sims[~mask] = -np.inf
        sims[q, np.arange(len(q))] = -np.inf
        top = np.argpartition(-sims, k, axis=0)[:k]
        for j in range(len(q)):
            out.append(sorted(top[:, j].tolist(), key=lambda i: -sims[i, j]))
    return out


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth, strict=True)])
    )


def filters(n: int) -> dict[str, tuple[dict[str, object], RowFilter, NDArray[np.bool_] | None]]:
    ids = np.arange(n)
    half = BASE + timedelta(minutes=n // 2)
    return {
        "none": ({}, RowFilter(), None),
        "created_after 50%": (
            {"created_after": half.isoformat()},
            RowFilter(created_after=int(half.timestamp())),
            ids >= n // 2,
        ),
        "pet_id 0.1%": ({"pet_id": 7}, RowFilter(pet_ids=frozenset({7})), ids % PETS == 7),
    }


def in_process(
    cache: IndexCache, x: NDArray[np.float32], queries: NDArray[np.int64], nprobes: list[int]
) -> None:
    segments = cache.segments(FOCUS)
    for name, (_, row_filter, mask) in filters(len(x)).items():
        truth = exact(x, queries, mask)
        for nprobe in nprobes:
            found, seconds = [], []
            for q in queries:
                start = time.perf_counter()
                ids, _ = search_segments(segments, x[q : q + 1], 11, row_filter, nprobe)
                seconds.append(time.perf_counter() - start)
                found.append([i for i in ids.tolist() if i != q][:10])
            p = percentiles(seconds)
            print(
                f"  in-process  {name:18s} nprobe={nprobe:3d}  recall@10={recall(found, truth):.4f}"
                f"  p50={p['p50']:.2f} ms  p95={p['p95']:.2f} ms"
            )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def through_server(home: Path, x: NDArray[np.float32], queries: NDArray[np.int64]) -> None:
    port = free_port()
    env = {**os.environ, "ML_PLATFORM_HOME": str(home), "OMP_NUM_THREADS": "1"}
    code = (
        "from ml_platform.serving.app import run_server; from ml_platform.settings import "
        f"Settings; run_server(Settings(), port={port})"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=600) as client:
            for _ in range(300):
                try:
                    client.get(f"{url}/health/live")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            before = rss_mib(server.pid)
            start = time.perf_counter()
            first = client.post(f"{url}/v1/search", json={"image_id": int(queries[0])})
            first.raise_for_status()
            load_s = time.perf_counter() - start
            again = client.post(f"{url}/v1/search", json={"image_id": int(queries[1])}).json()
            print(
                f"  server: RSS {before:.0f} MiB before the index, {rss_mib(server.pid):.0f} "
                f"MiB after (index +{rss_mib(server.pid) - before:.0f} MiB); first search "
                f"(loads it) {load_s:.1f} s"
            )
            print(f"  one warm search's stages (ms): {again['timings_ms']}")
            for name, (body, _, mask) in filters(len(x)).items():
                truth = exact(x, queries, mask)
                for concurrency in (1, 8):
                    found, seconds = serve_load(client, url, queries, body, concurrency)
                    p = percentiles(seconds)
                    print(
                        f"  HTTP c={concurrency}  {name:18s} recall@10={recall(found, truth):.4f}"
                        f"  p50={p['p50']:.1f} ms  p95={p['p95']:.1f} ms"
                    )
            print(f"  server RSS at the end {rss_mib(server.pid):.0f} MiB")
    finally:
        server.terminate()
        server.wait(timeout=30)


def serve_load(
    client: httpx.Client,
    url: str,
    queries: NDArray[np.int64],
    filters_body: dict[str, object],
    concurrency: int,
) -> tuple[list[list[int]], list[float]]:
    def one(q: int) -> tuple[list[int], float]:
        start = time.perf_counter()
        r = client.post(
            f"{url}/v1/search", json={"image_id": q, "limit": 10, "filters": filters_body}
        )
        r.raise_for_status()
        return [h["image_id"] for h in r.json()["results"]], time.perf_counter() - start

    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(one, queries.tolist()))
    return [a for a, _ in answers], [s for _, s in answers]


def engines(x: NDArray[np.float32], queries: NDArray[np.int64], codec: str) -> None:
    """faiss IVF (ours), faiss HNSW and hnswlib on the same sample: build, recall, latency,
    memory of the structure."""
    import faiss

    from ml_platform.learning.ann_search import build_ivf, default_nlist

    truth = exact(x, queries, None)

    def report(name: str, build_s: float, search: object, size_mib: float) -> None:
        found, seconds = [], []
        for q in queries:
            start = time.perf_counter()
            ids = search(x[q : q + 1])  # type: ignore[operator]
            seconds.append(time.perf_counter() - start)
            found.append([i for i in ids if i != q][:10])
        p = percentiles(seconds)
        print(
            f"  {name:28s} build {build_s:6.1f} s  recall@10={recall(found, truth):.4f}  "
            f"p50={p['p50']:.2f} ms  p95={p['p95']:.2f} ms  ~{size_mib:.0f} MiB"
        )

    start = time.perf_counter()
    ivf = build_ivf(x, default_nlist(len(x)), codec)
    built = time.perf_counter() - start
    ivf.nprobe = 32
    size = len(faiss.serialize_index(ivf)) / 2**20
    report(
        f"faiss IVF{ivf.nlist},{codec} np=32",
        built,
        lambda q: ivf.search(q, 11)[1][0].tolist(),
        size,
    )
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(x)
    built = time.perf_counter() - start
    hnsw.hnsw.efSearch = 64
    size = len(faiss.serialize_index(hnsw)) / 2**20
    report("faiss HNSW32 ef=64", built, lambda q: hnsw.search(q, 11)[1][0].tolist(), size)
    try:
        import hnswlib
    except ImportError:
        print("  hnswlib: not installed (pip install hnswlib==0.8.0)")
        return
    start = time.perf_counter()
    lib = hnswlib.Index(space="ip", dim=x.shape[1])
    lib.init_index(max_elements=len(x), M=16, ef_construction=100)
    lib.add_items(x, np.arange(len(x)))
    built = time.perf_counter() - start
    lib.set_ef(64)
    size = len(x) * (x.shape[1] * 4 + 16 * 2 * 4 + 16) / 2**20
    report("hnswlib M=16 ef=64", built, lambda q: lib.knn_query(q, 11)[0][0].tolist(), size)


def pets() -> None:
    """Image->image on the 120 real pets (EfficientNet-Lite0): precision@10 of the same breed,
    exact vs the compacted IVF segment search uses."""
    from PIL import Image

    from benchmarks.shared_models import EFFICIENTNET_ONNX, SHARED, efficientnet_embedder
    from ml_platform.learning.ann_search import Attributes, Segment, build_ivf, flat_segment

    root = SHARED / "data" / "pets"
    files = sorted(root.glob("*/*.jpg"))
    if not files:
        print(f"  pets: none under {root}; skipped")
        return
    with tempfile.TemporaryDirectory() as scratch:
        embedder = efficientnet_embedder(EFFICIENTNET_ONNX, Path(scratch))
        x = l2_normalise(embedder.embed([Image.open(f).convert("RGB") for f in files]))
    breeds = np.array([f.parent.name for f in files])
    ids = np.arange(len(files), dtype=np.int64)
    none = np.full(len(ids), -1, np.int64)
    attrs = Attributes(ids, none, none, np.full(len(ids), "pets", object))
    for name, segment in (
        ("exact (flat shard)", flat_segment(x, attrs)),
        ("IVF4,fp16 nprobe=2", Segment(build_ivf(x, 4, "fp16", train_per_list=30), attrs)),
    ):
        precision = []
        for q in ids:
            found, _ = search_segments([segment], x[q : q + 1], 11, RowFilter(), 2)
            top = [i for i in found.tolist() if i != q][:10]
            precision.append(np.mean(breeds[top] == breeds[q]))
        print(f"  pets {name:22s} mean precision@10 same breed = {np.mean(precision):.4f}")


def main() -> None:
    args = parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="search-bench-"))
    print(f"search benchmark: {args.vectors} x {args.dim}-d in {args.batches} batches, home {work}")
    x = synthetic(args)
    queries = np.random.default_rng(1).choice(len(x), args.queries, replace=False).astype(np.int64)
    layout = Layout.for_settings(Settings(home=work))
    start = time.perf_counter()
    shard_s = write_catalog(layout, x, args.batches)
    print(
        f"  wrote {args.batches} batches in {time.perf_counter() - start:.0f} s; a batch's shard "
        f"(similarity_index's work) p50 {np.median(shard_s) * 1000:.1f} ms, "
        f"max {max(shard_s) * 1000:.1f} ms"
    )
    start = time.perf_counter()
    outcome = compact(layout, FOCUS, CompactionConfig(min_new_vectors=1, codec=args.codec))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert outcome.manifest is not None
    print(
        f"  compaction: {time.perf_counter() - start:.0f} s, "
        f"IVF{outcome.manifest.nlist},{args.codec}"
        f" over {outcome.manifest.vectors} vectors (benchmark process peak RSS {peak:.0f} MiB)"
    )
    cache = IndexCache(layout, refresh_s=0)
    in_process(cache, x, queries, [int(n) for n in args.nprobes.split(",")])
    late = args.vectors  # a new batch after compaction: searchable once its shard is written
    extra = synthetic(argparse.Namespace(**{**vars(args), "vectors": 500}))
    start = time.perf_counter()
    write_catalog_offset(layout, extra, late)
    ids, _ = search_segments(cache.segments(FOCUS), extra[:1], 1, RowFilter(), 32)
    print(
        f"  a new 500-image batch: shard + catalog written and found by search in "
        f"{time.perf_counter() - start:.2f} s (top hit is itself: {ids.tolist() == [late]})"
    )
    layout.store.delete(layout.ann_shard(FOCUS, "batch-late"))  # exact truth below is over x
    if not args.skip_server:
        through_server(work, x, queries)
    if args.engines_sample:
        sample = x[: args.engines_sample]
        print(f"engines on the first {len(sample)} vectors, {len(queries)} queries, in-process:")
        engines(sample, queries[queries < len(sample)], args.codec)
    if not args.skip_pets:
        pets()
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def write_catalog_offset(layout: Layout, extra: NDArray[np.float32], first_id: int) -> None:
    ids = np.arange(first_id, first_id + len(extra), dtype=np.int64)
    key = "batch-late"
    catalog = {
        "image_id": ids.tolist(),
        "pet_id": (ids % PETS).tolist(),
        "created_at": [BASE.isoformat()] * len(ids),
    }
    layout.store.write_parquet(layout.catalog(key), pa.table(catalog))
    shard = AnnIndex.create(extra.shape[1])
    shard.add(ids, extra)
    write_shard(layout, FOCUS, key, shard)


if __name__ == "__main__":
    main()
