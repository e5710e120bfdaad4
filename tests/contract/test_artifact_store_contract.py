"""The artifact store's contract, on a folder and on fake-gcs-server."""

from __future__ import annotations

import pytest

from shared.errors import NotFound, PreconditionFailed


def test_bytes_read_back_and_overwrite(artifact_store):
    artifact_store.write_bytes("models/v1/model.joblib", b"\x00\xffmodel")
    assert artifact_store.read_bytes("models/v1/model.joblib") == b"\x00\xffmodel"
    artifact_store.write_bytes("models/v1/model.joblib", b"second")
    assert artifact_store.read_bytes("models/v1/model.joblib") == b"second"
    assert artifact_store.exists("models/v1/model.joblib")


@pytest.mark.parametrize("path", ["missing.json", "models/none/manifest.json"])
def test_a_missing_object_is_not_found(artifact_store, path):
    assert not artifact_store.exists(path)
    with pytest.raises(NotFound):
        artifact_store.read_bytes(path)
    with pytest.raises(NotFound):
        artifact_store.read_with_generation(path)


def test_compare_and_swap_on_generations(artifact_store):
    artifact_store.write_if_generation_matches("models/champion.json", b"{}", None)
    with pytest.raises(PreconditionFailed):
        artifact_store.write_if_generation_matches("models/champion.json", b"{}", None)
    data, generation = artifact_store.read_with_generation("models/champion.json")
    assert data == b"{}"
    artifact_store.write_if_generation_matches("models/champion.json", b'{"v": 2}', generation)
    with pytest.raises(PreconditionFailed):  # the generation read before the last write is stale
        artifact_store.write_if_generation_matches("models/champion.json", b'{"v": 3}', generation)
    assert artifact_store.read_bytes("models/champion.json") == b'{"v": 2}'


def test_listing_is_sorted_and_by_string_prefix(artifact_store):
    for path in ("r/b/3", "r/a/1", "r/ab/2", "other/x"):
        artifact_store.write_bytes(path, b"x")
    assert list(artifact_store.list_paths("r/a")) == ["r/a/1", "r/ab/2"]
    assert list(artifact_store.list_paths("r/")) == ["r/a/1", "r/ab/2", "r/b/3"]
    assert list(artifact_store.list_paths("nothing/")) == []


def test_delete_is_idempotent(artifact_store):
    artifact_store.write_bytes("reports/drift/x/report.json", b"{}")
    artifact_store.delete("reports/drift/x/report.json")
    artifact_store.delete("reports/drift/x/report.json")
    assert not artifact_store.exists("reports/drift/x/report.json")
    assert list(artifact_store.list_paths("reports/")) == []


def test_a_location_names_where_a_person_opens_the_object(artifact_store):
    artifact_store.write_bytes("reports/drift/r1/report.html", b"<html></html>")
    location = artifact_store.location("reports/drift/r1/report.html")
    if location.startswith("gs://"):
        assert location == f"gs://{artifact_store.bucket_name}/reports/drift/r1/report.html"
    else:
        from pathlib import Path

        assert Path(location).is_absolute() and Path(location).read_bytes() == b"<html></html>"
