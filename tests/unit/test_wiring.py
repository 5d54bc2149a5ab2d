"""The local wiring is read from template.yaml: the local runner and the stack cannot drift."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from leadimport_local.wiring import (
    LocalWiring,
    WiringError,
    default_template_path,
    load_template,
    load_wiring,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_default_template_is_the_repository_one():
    assert default_template_path() == ROOT / "template.yaml"


def test_wiring_of_the_repository_template():
    # Given the template as committed, When the wiring is loaded
    wiring = load_wiring()
    # Then names follow the template's rule with the local stack name, numbers its defaults
    assert wiring == LocalWiring(
        bucket_name="leadimport-local-uploads-123456789012-us-east-1",
        upload_prefix="uploads/",
        drop_prefix="drop/",
        queue_name="leadimport-local-chunks",
        dlq_name="leadimport-local-chunks-dlq",
        max_receive_count=5,
        worker_batch_size=10,
        worker_timeout=60,
        visibility_timeout=360,
        chunk_rows=2000,
        max_upload_bytes=2 * 1024**3,
    )


def test_wiring_is_frozen_and_typed():
    wiring = load_wiring()
    with pytest.raises(dataclasses.FrozenInstanceError):
        wiring.chunk_rows = 1  # type: ignore[misc]
    for field in dataclasses.fields(LocalWiring):
        assert isinstance(getattr(wiring, field.name), int if field.type == "int" else str), field.name


def test_local_bucket_name_is_a_valid_s3_name():
    name = load_wiring().bucket_name
    assert 3 <= len(name) <= 63 and name == name.lower()


def test_visibility_timeout_covers_six_worker_timeouts():
    wiring = load_wiring()
    assert wiring.visibility_timeout >= 6 * wiring.worker_timeout


def test_settings_environment_matches_the_stacks_variables():
    wiring = load_wiring()
    env = wiring.settings_environment()
    assert env["UPLOAD_BUCKET"] == wiring.bucket_name
    assert env["CHUNK_ROWS"] == "2000" and env["MAX_UPLOAD_BYTES"] == str(2 * 1024**3)
    globals_env = load_template(default_template_path())["Globals"]["Function"]["Environment"]["Variables"]
    assert set(env) - {"MAX_RECEIVE_COUNT"} <= set(globals_env)


def _edited_template(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = default_template_path().read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_explicit_names_and_changed_defaults_are_followed(tmp_path):
    # Given a template whose name parameters have defaults and whose numbers changed
    path = _edited_template(
        tmp_path,
        (
            '  UploadBucketName:\n    Type: String\n    Default: ""',
            '  UploadBucketName:\n    Type: String\n    Default: "my-bucket"',
        ),
        (
            '  ChunkQueueName:\n    Type: String\n    Default: ""',
            '  ChunkQueueName:\n    Type: String\n    Default: "my-chunks"',
        ),
        ("    Default: 2000\n", "    Default: 250\n"),
        ("      VisibilityTimeout: 360", "      VisibilityTimeout: 600"),
    )
    # When it is loaded
    wiring = load_wiring(path)
    # Then the wiring follows it
    assert (wiring.bucket_name, wiring.queue_name, wiring.dlq_name) == (
        "my-bucket",
        "my-chunks",
        "my-chunks-dlq",
    )
    assert wiring.chunk_rows == 250 and wiring.visibility_timeout == 600


def test_missing_template_is_a_clear_error(tmp_path):
    with pytest.raises(WiringError, match="template not found"):
        load_wiring(tmp_path / "nope.yaml")


def test_a_template_without_a_worker_is_rejected(tmp_path):
    path = _edited_template(
        tmp_path,
        ("      EventSourceArn: !GetAtt ChunkQueue.Arn", "      EventSourceArn: !GetAtt UploadBucket.Arn"),
    )
    with pytest.raises(WiringError, match="SQS event source"):
        load_wiring(path)


def test_handing_the_same_local_adapter_again_keeps_the_database_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each local API call hands the roots their local adapters again: when nothing changes the container keeps
    its adapters, as Lambda does (a new PostgreSQL connection per status request cost ~40 ms of CPU)."""
    from leadimport import roots
    from leadimport.roots import shared

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    roots.reset()

    def factory() -> None:
        return None

    try:
        roots.use("continuation", factory)
        first = shared.database()
        roots.use("continuation", factory)
        assert shared.database() is first
        roots.use("continuation", lambda: None)  # another adapter: the roots are built again
        assert shared.database() is not first
    finally:
        roots.use("continuation", None)
        roots.reset()
