"""One rule for models a home cannot load: on a home the demo made offline, serving allows
random weights and says so (start-up line, /readyz, every answer); elsewhere a model that
cannot load is refused and /readyz degrades, naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ml_platform.cli.weights import home_rule, start_up_line
from ml_platform.demo.offline_home import mark_made_offline
from ml_platform.home import MADE_OFFLINE as MARK_NAME
from ml_platform.home import made_offline
from ml_platform.serving import ServeOptions
from ml_platform.settings import Settings
from ml_platform.vision.zero_shot import ZeroShotKind
from tests.serving.conftest import CLIP, AppFactory, analyze_json, image_bytes
from tests.vision.test_zero_shot_offline import tiny_checkpoint

README_REQUEST = {"model": "clip", "classes": ["cat", "dog"], "top_k": 1, "threshold": 0.2}


def zero_shot_upload(client: TestClient) -> Any:
    """README's zero-shot example: the request as a form field, the photo uploaded."""
    return client.post(
        "/v1/zero-shot",
        data={"request": json.dumps(README_REQUEST)},
        files=[("images", ("chelsea-00.jpg", image_bytes(), "image/jpeg"))],
    )


def test_a_home_the_demo_made_offline_answers_zero_shot_on_random_weights_and_says_so(
    make_app: AppFactory, tmp_path: Path
) -> None:
    assert mark_made_offline(tmp_path / "home") and not mark_made_offline(tmp_path / "home")
    clip = tiny_checkpoint(tmp_path / "clip", ZeroShotKind.CLIP)  # no weights, no tokenizer
    app = make_app(options=ServeOptions(clip_zero_shot_model=clip), allow_random_weights=False)

    answer = zero_shot_upload(app.client)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["weights"] == "random" and len(body["results"][0]["predictions"]) <= 1
    readiness = app.client.get("/readyz")
    assert readiness.status_code == 200 and readiness.json()["status"] == "ready"
    (warning,) = readiness.json()["warnings"]
    assert warning.startswith("RANDOM weights allowed") and MARK_NAME in warning
    assert readiness.json()["models"][f"zero_shot 'clip:{clip}'"] == "ok: loaded"


def test_a_home_not_marked_offline_refuses_random_weights_and_readyz_names_the_model(
    make_app: AppFactory, tmp_path: Path
) -> None:
    clip = tiny_checkpoint(tmp_path / "clip", ZeroShotKind.CLIP)
    app = make_app(options=ServeOptions(clip_zero_shot_model=clip), allow_random_weights=False)

    answer = zero_shot_upload(app.client)
    assert answer.status_code == 503
    assert "ML_PLATFORM_ALLOW_RANDOM_WEIGHTS=1" in answer.json()["detail"]
    readiness = app.client.get("/readyz").json()
    assert readiness["status"] == "degraded" and readiness["warnings"] == []
    assert readiness["failing"] == [f"zero_shot 'clip:{clip}'"]


def test_readyz_is_degraded_naming_an_embedder_that_cannot_load(
    make_app: AppFactory, tmp_path: Path
) -> None:
    empty = tmp_path / "no-weights"
    empty.mkdir()
    app = make_app(spy_embedders=False, allow_random_weights=False, clip_model=str(empty))
    embed: dict[str, object] = {"type": "embed", "embedding_type": CLIP}

    answer = app.client.post("/v1/analyze", json=analyze_json(image_bytes(), embed))
    assert answer.json()["results"][0]["error"]["kind"] == "model_unavailable", answer.text
    readiness = app.client.get("/readyz")
    assert readiness.status_code == 200 and readiness.json()["status"] == "degraded"
    name = f"embedder {CLIP!r}"
    assert name in readiness.json()["failing"]
    reason = readiness.json()["models"][name]
    assert reason.startswith("failed: ") and "ML_PLATFORM_CLIP_MODEL" in reason


def test_serve_says_in_its_start_up_line_which_weights_it_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the rule sets it on a marked home
    plain = home_rule(Settings(home=tmp_path / "plain", allow_random_weights=False))
    assert not plain.allow_random_weights and not made_offline(plain.resolved_home)
    assert "pretrained weights only" in start_up_line(plain, "127.0.0.1", 8000)

    mark_made_offline(tmp_path / "demo")
    demo = home_rule(Settings(home=tmp_path / "demo", allow_random_weights=False), say=False)
    line = start_up_line(demo, "127.0.0.1", 8000)
    assert demo.allow_random_weights and "http://127.0.0.1:8000" in line
    assert "RANDOM weights allowed: the demo made this home offline" in line
    assert str(tmp_path / "demo" / MARK_NAME) in line
