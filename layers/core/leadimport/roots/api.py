"""Composition root of the API function: no Redis client and no chunk importer at cold start (undo loads the
token store on first use)."""

from __future__ import annotations

from leadimport import settings
from leadimport.roots.continuation import continuation
from leadimport.roots.shared import cached, database, upload_store
from leadimport.services.imports_api import ImportsApi, UploadConfig


@cached
def imports_api() -> ImportsApi:
    s = settings.storage()
    return ImportsApi(database(), upload_store(),
                      UploadConfig(s.upload_prefix, s.max_upload_bytes, s.presign_expires_seconds),
                      lambda import_id: continuation()(import_id))


def company_claim() -> str:
    return settings.api().company_claim
