"""The start-up champion index, read in pages: the same champions whatever the page size, a
version updated between two pages still read, and each distinct tag string kept once
(a real sqlite MLflow store and client)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.store.entities.paged_list import PagedList

from ml_platform.domain import DerivativeType
from ml_platform.model_registry import versions as versions_module
from ml_platform.model_registry.collection.lookup import get_champion
from ml_platform.model_registry.collection.naming import MODEL_NAME_PREFIX, model_name
from ml_platform.serving import champion_index as index_module
from ml_platform.serving.champion_index import champion_index
from tests.serving.conftest import CLIP, CLIP_DIM, Store, new_store

COLLECTIONS = (1, 2, 3, 4)


@pytest.fixture(scope="module")
def paged_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Collections 1-3 (`new_store`), 4 with a champion and a newer version that is not one,
    and 5 without a champion."""
    store = new_store(tmp_path_factory.mktemp("paged"))
    store.register(4, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM)
    store.register(4, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM, champion=False)
    store.register(5, DerivativeType.WHOLE_IMAGE, CLIP, CLIP_DIM, champion=False)
    return store


class UpdatingClient(MlflowClient):
    """The real client; once the first page of versions is read, the description of one
    version is changed (MLflow then moves it first in its default order, last update first)."""

    def __init__(self, uri: str, updated: tuple[str, str]) -> None:
        super().__init__(tracking_uri=uri, registry_uri=uri)
        self.updated = updated
        self.pages = 0

    def search_model_versions(self, *args: Any, **kwargs: Any) -> PagedList[Any]:
        page = super().search_model_versions(*args, **kwargs)
        self.pages += 1
        if self.pages == 1:
            self.update_model_version(*self.updated, description="edited while indexing")
        return page


def test_an_index_read_one_version_a_page_names_every_champion_as_one_page_does(
    paged_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = champion_index(paged_store.client, MODEL_NAME_PREFIX)
    monkeypatch.setattr(index_module, "VERSIONS_PAGE", 1)
    monkeypatch.setattr(versions_module, "PAGE_SIZE", 1)
    paged = champion_index(paged_store.client, MODEL_NAME_PREFIX)
    assert paged == whole
    assert sorted(paged) == sorted(model_name(c) for c in COLLECTIONS)
    for collection_id in COLLECTIONS:
        expected = get_champion(paged_store.client, collection_id)
        assert expected is not None
        found = paged[model_name(collection_id)]
        assert (found.version, found.tags, found.aliases, found.run_id) == (
            expected.version, expected.tags, expected.aliases, expected.run_id
        )  # fmt: skip


def test_a_champion_updated_between_two_pages_is_still_indexed(
    paged_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = model_name(COLLECTIONS[-1])
    champion = get_champion(paged_store.client, COLLECTIONS[-1])
    assert champion is not None
    client = UpdatingClient(paged_store.uri, (last, champion.version))
    monkeypatch.setattr(index_module, "VERSIONS_PAGE", 1)
    index = champion_index(client, MODEL_NAME_PREFIX)
    assert client.pages > 2
    assert sorted(index) == sorted(model_name(c) for c in COLLECTIONS)


def test_equal_tag_strings_of_different_champions_are_one_object(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    index = champion_index(store.client, MODEL_NAME_PREFIX)
    first, third = index[model_name(1)], index[model_name(3)]  # both CLIP, whole image
    shared = [key for key in first.tags if first.tags[key] == third.tags[key]]
    assert len(shared) >= 4
    for key in shared:
        (key_1,) = (k for k in first.tags if k == key)
        (key_3,) = (k for k in third.tags if k == key)
        assert key_1 is key_3 and first.tags[key] is third.tags[key]
