"""Import API behind API Gateway (HTTP API): Powertools routing, validation and OpenAPI.

The company comes from the JWT authorizer's claim (COMPANY_CLAIM, default `company_id`), never
from the body or path. Each route parses, calls leadimport.services.imports_api, shapes the reply.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from leadimport import tracing
from leadimport.imports.resource import (
    CreatedImport,
    ImportPage,
    ImportPreview,
    ImportResource,
    RejectedRowPage,
    RowWarningPage,
)
from leadimport.imports.status import ImportStatus
from leadimport.options import (
    ImportChange,
    ImportRequest,
    InvalidOptionsError,
    describe_errors,
    first_error_sentence,
)
from leadimport.reasons import Reason, RowWarning
from leadimport.roots import api as root
from leadimport.services.imports_api import ConflictError, ImportNotFoundError, InvalidRequestError

logger = Logger()
# Every answer is validated against its route's return model: an answer that breaks it is our bug, a 500.
api = APIGatewayHttpResolver(enable_validation=True, response_validation_error_http_code=500)
api.enable_swagger(path="/docs", title="leadimport API", version="1.0.0")



class Problem(BaseModel):
    """An error: a stable code and a sentence for the user (RFC 9457 style)."""

    status: int
    code: str
    message: str
    errors: list[dict[str, Any]] | None = None


def _problem_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"model": Problem}}}


_COMMON = {
    400: _problem_doc("The request body could not be read"),
    401: _problem_doc("No company in the request (sign in again)"),
    415: _problem_doc("The body is not JSON"),
    422: _problem_doc("The request is not valid: a code and a sentence say why"),
}


def _responses(success: int = 200, success_doc: str = "The import", *, found: bool = True, conflict: bool = False,
               content: dict[str, Any] | None = None) -> dict[int, Any]:
    """The documented answers of a route, so that the OpenAPI document matches what the API returns."""
    # The success answer's schema comes from the route's return type (a model of leadimport.imports.resource).
    doc: dict[int, Any] = {success: {"description": success_doc, **(content or {})}, **_COMMON}
    if found:
        doc[404] = _problem_doc("No such import in your company")
    if conflict:
        doc[409] = _problem_doc("The import is not in a state that allows this")
    return doc


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column_mapping: dict[str, str | None] | None = None


class UnauthorizedError(Exception):
    pass


def _company_id() -> int:
    claim = root.company_claim()
    context = api.current_event.request_context
    claims: dict[str, Any] = {}
    try:
        claims = context.authorizer.jwt_claim or {}
    except (AttributeError, KeyError, TypeError):
        claims = {}
    raw = claims.get(claim)
    if raw is None or not str(raw).isdigit():
        raise UnauthorizedError
    return int(raw)


def _problem(status: int, code: str, message: str, **extra: Any) -> Response[str]:
    """An RFC 9457 problem: a stable code and a sentence for the user."""
    return Response(status_code=status, content_type="application/problem+json",
                    body=json.dumps({"status": status, "code": code, "message": message, **extra}))


@api.exception_handler(UnauthorizedError)
def _unauthorized(_: UnauthorizedError) -> Response[str]:
    return _problem(401, "unauthorized", "Sign in again: the request carries no company.")


@api.exception_handler(ImportNotFoundError)
def _not_found(_: ImportNotFoundError) -> Response[str]:
    return _problem(404, "import_not_found", "There is no such import.")


@api.exception_handler(ConflictError)
def _conflict(exc: ConflictError) -> Response[str]:
    return _problem(409, exc.code, exc.message)


@api.exception_handler(InvalidRequestError)
def _invalid(exc: InvalidRequestError) -> Response[str]:
    return _problem(422, exc.code, exc.message)


@api.exception_handler(InvalidOptionsError)
def _invalid_options(exc: InvalidOptionsError) -> Response[str]:
    return _problem(422, exc.code, exc.message, **({"errors": exc.errors} if exc.errors else {}))


@api.exception_handler(RequestValidationError)
def _validation(exc: RequestValidationError) -> Response[str]:
    return _problem(422, "invalid_request", first_error_sentence(exc.errors()), errors=describe_errors(exc.errors()))


@api.post("/imports", status_code=201, responses=_responses(201, "The import, with its presigned upload", found=False))
def create_import(body: ImportRequest) -> Response[CreatedImport]:
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=root.imports_api().create(_company_id(), body))


@api.get("/imports", responses=_responses(200, "A page of imports, newest first", found=False))
def list_imports(status: Annotated[ImportStatus | None, Query()] = None,
                 limit: Annotated[int, Query(ge=1, le=100)] = 25,
                 cursor: Annotated[str | None, Query(max_length=500)] = None) -> ImportPage:
    return root.imports_api().list(_company_id(), status=status, limit=limit, cursor=cursor)


@api.get("/imports/<import_id>", responses=_responses())
def get_import(import_id: str) -> ImportResource:
    return root.imports_api().get(_company_id(), import_id)


@api.get("/imports/<import_id>/preview", responses=_responses(200, "The preview", conflict=True))
def get_preview(import_id: str) -> ImportPreview:
    return root.imports_api().preview(_company_id(), import_id)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column_mapping: dict[str, str | None] = Field(max_length=500, description=(
        "Each file column to the name it is imported as (caller_id, email, ... or a token), null to skip it"))


@api.post("/imports/<import_id>/preview", responses=_responses(200, "The preview, computed again with this mapping",
                                                              conflict=True))
def change_preview(import_id: str, body: PreviewRequest) -> ImportPreview:
    return root.imports_api().repreview(_company_id(), import_id, body.column_mapping)


@api.post("/imports/<import_id>/start", responses=_responses(conflict=True))
def start_import(import_id: str, body: StartRequest) -> ImportResource:
    return root.imports_api().start(_company_id(), import_id, body.column_mapping)


@api.patch("/imports/<import_id>", responses=_responses(conflict=True))
def change_import(import_id: str, body: ImportChange) -> ImportResource:
    return root.imports_api().change(_company_id(), import_id, body.max_concurrency)


@api.post("/imports/<import_id>/cancel", responses=_responses(conflict=True))
def cancel_import(import_id: str) -> ImportResource:
    return root.imports_api().cancel(_company_id(), import_id)


@api.post("/imports/<import_id>/undo", responses=_responses(conflict=True))
def undo_import(import_id: str) -> ImportResource:
    return root.imports_api().undo(_company_id(), import_id)


@api.get("/imports/<import_id>/errors", responses=_responses(200, "A page of rejected rows"))
def list_errors(import_id: str, reason: Annotated[Reason | None, Query()] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                cursor: Annotated[str | None, Query(max_length=500)] = None) -> RejectedRowPage:
    return root.imports_api().errors(_company_id(), import_id, reason=reason.value if reason else None, limit=limit,
                                     cursor=cursor)


@api.get("/imports/<import_id>/warnings", responses=_responses(200, "A page of row warnings (the rows went in)"))
def list_warnings(import_id: str, code: Annotated[RowWarning | None, Query()] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  cursor: Annotated[str | None, Query(max_length=500)] = None) -> RowWarningPage:
    return root.imports_api().warnings(_company_id(), import_id, code=code.value if code else None, limit=limit,
                                       cursor=cursor)


@api.get("/imports/<import_id>/errors.csv", responses={
    **_responses(200, "The rejected rows as a spreadsheet-safe CSV",
                 content={"content": {"text/csv": {"schema": {"type": "string"}}}}),
    303: {"description": "A large file: download it from the presigned URL in Location (15 minutes)"}})
def errors_csv(import_id: str) -> Response[str]:
    text, url = root.imports_api().errors_csv_download(_company_id(), import_id)
    if url is not None:
        return Response(status_code=303, headers={"Location": url}, body="")
    return Response(status_code=200, content_type="text/csv; charset=utf-8", body=text or "",
                    headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'})


@api.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                    body=api.get_openapi_json_schema(title="leadimport API", version="1.0.0"))


def _unreadable_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """A body the routes cannot read (not UTF-8, not JSON, too deep, a number too long): a problem, not a crash."""
    body = event.get("body")
    if not body:
        return None
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    media = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    status, code, message = 0, "", ""
    if media not in ("application/json", "") and not media.endswith("+json"):
        status, code, message = 415, "unsupported_media_type", "Send the request body as JSON (Content-Type: application/json)."
    else:
        try:
            raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8", "surrogatepass")
            text = raw.decode("utf-8")
        except (ValueError, UnicodeError):
            status, code, message = 400, "unreadable_body", "The request body is not UTF-8 JSON."
        else:
            # Read it once here: JSON nested thousands deep (RecursionError) or an integer of more than 4,300
            # digits (ValueError) must be the client's 400, not an exception inside the router.
            try:
                json.loads(text)
            except RecursionError:
                status, code, message = 400, "unreadable_body", "The request body is nested too deeply to be read."
            except ValueError as exc:
                status, code, message = 400, "unreadable_body", f"The request body is not valid JSON: {str(exc)[:200]}"
    if not status:
        return None
    return {"statusCode": status, "headers": {"Content-Type": "application/problem+json"},
            "body": json.dumps({"status": status, "code": code, "message": message}), "isBase64Encoded": False}


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _unreadable_body(event) or api.resolve(event, context)
