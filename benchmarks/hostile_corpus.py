"""The bad-image corpus and a mutation fuzz against a real server process. Prints; never asserts.

    PYTHONPATH=. python benchmarks/hostile_corpus.py [--rounds 3] [--fuzz 2000]

Starts uvicorn in a child process (tiny random embedders, a stub detector, a temporary
MLflow registry with one champion, a tiny CLIP for zero-shot), then sends every corpus file
as base64 JSON, as a multipart upload and (all at once) as one zero-shot batch, `--rounds`
times, and `--fuzz` seeded byte mutations of small images. Reports status counts, server
errors (5xx), the slowest request, and the server's RSS (from /proc) at baseline (after a
warm-up), at its peak, and after the corpus.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

SERVER = r"""
import sys, uvicorn
from pathlib import Path
from mlflow import MlflowClient
from ml_platform.domain import DerivativeType
from ml_platform.serving import ModelFactories, ServeOptions, create_app
from ml_platform.settings import Settings
from tests.serving.conftest import CLIP, CLIP_DIM, Store, StubDetector, tiny_embedders
root, port, clip_dir = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
uri = f"sqlite:///{root / 'mlflow.db'}"
store = Store(root, uri, MlflowClient(tracking_uri=uri, registry_uri=uri))
store.register(1, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
embedders = tiny_embedders()
settings = Settings(home=root / "home", mlflow_tracking_uri=uri, allow_random_weights=True)
options = ServeOptions(clip_zero_shot_model=clip_dir, max_zero_shot_images=64)
app = create_app(settings, options, factories=ModelFactories(
    embedder=lambda name: embedders[name], detector=StubDetector))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tiny_clip(directory: Path) -> str:
    from transformers import CLIPConfig

    from tests.serving.test_zero_shot import WORDS, write_tokenizer

    tokens = {"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}
    layers = {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    text = {"vocab_size": len(WORDS), "hidden_size": 16, "max_position_embeddings": 16}
    CLIPConfig(
        text_config={**text, **layers, **tokens},
        vision_config={"hidden_size": 16, "image_size": 32, "patch_size": 16, **layers},
        projection_dim=8,
    ).save_pretrained(directory)
    write_tokenizer(directory)
    return str(directory)


class Run:
    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid
        self.statuses: Counter[int] = Counter()
        self.slowest = (0.0, "")
        self.peak = 0.0

    def post(self, client: httpx.Client, name: str, **kwargs: object) -> httpx.Response:
        start = time.perf_counter()
        response = client.post(self.url + kwargs.pop("path", "/v1/analyze"), **kwargs)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        self.statuses[response.status_code] += 1
        self.slowest = max(self.slowest, (seconds, name))
        self.peak = max(self.peak, rss_mb(self.pid))
        return response


def send_corpus(run: Run, client: httpx.Client, cases: list) -> None:  # type: ignore[type-arg]
    operation = [{"type": "classify", "collection_id": 1}]
    for case in cases:
        encoded = base64.b64encode(case.data).decode()
        run.post(
            client, f"{case.name} json", json={"image_base64": encoded, "operations": operation}
        )
        run.post(
            client,
            f"{case.name} multipart",
            files={"image": ("f", case.data)},
            data={"operations": json.dumps(operation)},
        )
    images = [{"id": c.name, "image_base64": base64.b64encode(c.data).decode()} for c in cases]
    body = {"model": "clip", "images": images, "classes": ["cat", "dog"]}
    run.post(client, "zero-shot corpus", path="/v1/zero-shot", json=body)


def fuzz(run: Run, client: httpx.Client, count: int, seeds: list[bytes]) -> None:
    rng = random.Random(20260311)
    operation = json.dumps([{"type": "classify", "collection_id": 1}])
    for i in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(max(len(data), 1))
            if rng.random() < 0.7 and data:
                data[at] ^= rng.randrange(1, 256)
            else:
                data = data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 16)))
        run.post(
            client, f"fuzz {i}", files={"image": ("f", bytes(data))}, data={"operations": operation}
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fuzz", type=int, default=2000)
    args = parser.parse_args()
    from PIL import Image

    from tests.serving.bad_images import corpus, save

    cases = corpus()
    seeds = [
        save(Image.new("RGB", (24, 16), "teal"), f) for f in ("JPEG", "PNG", "GIF", "WEBP", "TIFF")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root, port = Path(tmp), free_port()
        clip = tiny_clip(root / "clip")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.getcwd()}
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(root), str(port), clip], env=env
        )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(timeout=60) as client:
                while True:
                    try:
                        if client.get(url + "/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.5)
                run = Run(url, server.pid)
                send_corpus(run, client, [c for c in cases if c.decodes])  # warm-up: models loaded
                baseline = rss_mb(server.pid)
                run.statuses.clear()
                for _ in range(args.rounds):
                    send_corpus(run, client, cases)
                after_corpus = rss_mb(server.pid)
                fuzz(run, client, args.fuzz, seeds)
                after_fuzz = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(10)
    requests = sum(run.statuses.values())
    errors = sum(n for status, n in run.statuses.items() if status >= 500)
    print(
        f"corpus: {len(cases)} files x {args.rounds} rounds x (json + multipart) + zero-shot "
        f"batches; fuzz: {args.fuzz} mutated uploads"
    )
    print(f"requests: {requests}; statuses: {dict(sorted(run.statuses.items()))}; 5xx: {errors}")
    print(f"slowest request: {run.slowest[0]:.2f} s ({run.slowest[1]})")
    print(
        f"server RSS MB: baseline {baseline:.0f}, peak {run.peak:.0f}, after corpus "
        f"{after_corpus:.0f} (+{after_corpus - baseline:.0f}), after fuzz {after_fuzz:.0f} "
        f"(+{after_fuzz - baseline:.0f})"
    )


if __name__ == "__main__":
    main()
