"""POST /v1/search on a real app: every query kind, filters, errors as sentences, and two
replicas with the index on S3 and no home of their own answering identically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ml_platform.defs.resources import StorageResource
from ml_platform.serving import ServeOptions
from tests.services.search_home import FOCUS, MEMBERS_OF, add_indexed_batch
from tests.serving.conftest import CLIP_DIM, AppFactory, Harness, image_bytes
from tests.serving.test_zero_shot import WORDS, write_tokenizer

DINO_FOCUS = "whole_image__embed_dino_v2"


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny CLIP checkpoint (config + tokenizer; random weights) whose text features have
    the tiny image embedder's width, so text queries can search the same index."""
    from transformers import CLIPConfig

    tokens = {"bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}
    layers = {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    config = CLIPConfig(
        text_config={"vocab_size": len(WORDS), "hidden_size": 16, "max_position_embeddings": 16,
                     **layers, **tokens},
        vision_config={"hidden_size": 16, "image_size": 32, "patch_size": 16, **layers},
        projection_dim=CLIP_DIM,
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("tiny-clip-text")
    config.save_pretrained(directory)
    write_tokenizer(directory)
    return str(directory)


def fill(storage: StorageResource) -> None:
    for n in range(3):
        add_indexed_batch(storage, f"b{n}", range(n * 30 + 1, n * 30 + 31), seed=n, dim=CLIP_DIM)


@pytest.fixture
def app(make_app: AppFactory, clip_dir: str, tmp_path: Path) -> Harness:
    fill(StorageResource(home=str(tmp_path / "home")))
    return make_app(options=ServeOptions(refresh_interval_s=0.0, clip_zero_shot_model=clip_dir))


def post(app: Harness, body: dict[str, object]) -> tuple[int, Any]:
    response = app.client.post("/v1/search", json=body)
    return response.status_code, response.json()


def test_image_id_search_answers_ranked_results_with_thumbnails(app: Harness) -> None:
    status, body = post(app, {"image_id": 4, "limit": 7})

    assert status == 200, body
    results = body["results"]
    assert isinstance(results, list) and len(results) == 7
    assert body["focus"] == FOCUS.key and body["query"] == {"kind": "image_id", "image_id": 4}
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert all(r["thumbnail_url"] == f"/v1/images/{r['image_id']}/thumbnail" for r in results)
    assert 4 not in [r["image_id"] for r in results]
    assert set(body["timings_ms"]) >= {"query_ms", "search_ms", "total_ms"}


def test_text_search_uses_the_clip_text_tower_and_labels_random_weights(app: Harness) -> None:
    status, body = post(app, {"text": "a photo of a dog", "limit": 5})

    assert status == 200, body
    assert body["query"]["weights"] == "random"
    assert len(body["results"]) == 5


def test_an_uploaded_image_is_embedded_with_the_focus_embedder(app: Harness) -> None:
    request = {"limit": 3, "filters": {"pet_id": 2}}
    response = app.client.post(
        "/v1/search", data={"request": json.dumps(request)},
        files={"image": ("dog.jpg", image_bytes(seed=3), "image/jpeg")},
    )  # fmt: skip

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"]["kind"] == "image" and body["query"]["weights"] == "random"
    assert all(r["image_id"] % 4 == 2 for r in body["results"]) and len(body["results"]) == 3
    assert app.spies[FOCUS.embedding_type].calls


def test_a_collection_with_a_champion_searches_along_its_direction(app: Harness) -> None:
    status, body = post(app, {"collection_id": 1, "limit": 4})

    assert status == 200, body
    assert body["query"]["direction"] == "champion"
    assert len(body["results"]) == 4


def test_a_collection_without_a_champion_searches_from_its_members(app: Harness) -> None:
    status, body = post(app, {"collection_id": MEMBERS_OF, "limit": 4,
                              "filters": {"exclude_collection_id": MEMBERS_OF}})  # fmt: skip

    assert status == 200, body
    assert body["query"]["direction"] == "centroid"
    assert all(r["image_id"] % 5 > 1 for r in body["results"])


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"limit": 3}, 422, "exactly one query"),
        ({"text": "dog", "image_id": 3}, 422, "exactly one query"),
        ({"text": "a dog", "focus": DINO_FOCUS}, 422, f"focus {DINO_FOCUS} has no text tower"),
        ({"image_id": 99_999}, 404, "no ingestion batch"),
        ({"image_id": 3, "focus": "nonsense"}, 422, "is not <derivative>__<embedding type>"),
        ({"image_base64": "%%%"}, 400, ""),
        ({"image_id": 3, "limit": 500}, 422, ""),
        ({"image_id": 3, "filters": {"created_after": "2025-01-01T00:00:00"}}, 422, ""),
    ],
)
def test_client_mistakes_are_4xx_with_a_sentence(
    app: Harness, body: dict[str, object], status: int, words: str
) -> None:
    code, answer = post(app, body)

    assert code == status, answer
    assert words in json.dumps(answer)


def test_two_replicas_with_the_index_on_s3_and_no_home_answer_identically(
    make_app: AppFactory, s3_store_url: str, moto_s3: object, tmp_path: Path
) -> None:
    shared = {"store_url": s3_store_url, "s3_endpoint_url": moto_s3.endpoint_url,  # type: ignore[attr-defined]
              "metadata_url": f"sqlite:///{tmp_path / 'metadata.sqlite'}"}  # fmt: skip
    fill(StorageResource(home=str(tmp_path / "writer"), overrides=shared))
    replicas = [make_app(home=tmp_path / f"replica-{n}", **shared) for n in range(2)]
    body = {"image_id": 33, "limit": 10, "filters": {"pet_id": 1}}
    answers = [post(r, body) for r in replicas]

    assert [status for status, _ in answers] == [200, 200]
    assert answers[0][1]["results"] == answers[1][1]["results"]
    assert len(answers[0][1]["results"]) == 10
    assert not any((tmp_path / f"replica-{n}" / "data" / "ann").exists() for n in range(2))
