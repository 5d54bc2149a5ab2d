"""Import API behind API Gateway (HTTP API): Powertools routing, validation and OpenAPI.

The company comes from the JWT authorizer's claim (COMPANY_CLAIM, default `company_id`), never
from the body or path. Each route parses, calls leadimport.services.imports_api, shapes the reply.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from leadimport import app as core
from leadimport.options import ImportRequest
from leadimport.services.imports_api import ConflictError, ImportNotFoundError, InvalidRequestError

logger = Logger()
tracer = Tracer()
api = APIGatewayHttpResolver(enable_validation=True)
api.enable_swagger(path="/docs", title="leadimport API", version="1.0.0")

ImportStatus = Literal["awaiting_upload", "awaiting_confirmation", "queued", "splitting", "processing", "completed",
                       "failed", "cancelled"]


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column_mapping: dict[str, str | None] | None = None


class UnauthorizedError(Exception):
    pass


def _company_id() -> int:
    claim = os.environ.get("COMPANY_CLAIM", "company_id")
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


@api.exception_handler(RequestValidationError)
def _validation(exc: RequestValidationError) -> Response[str]:
    errors = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg")}
              for e in exc.errors()]
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    where = f" ({first['field']})" if first["field"] else ""
    return _problem(422, "invalid_request", f"{first['message']}{where}", errors=errors)


@api.post("/imports")
def create_import(body: ImportRequest) -> Response[dict[str, Any]]:
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=core.imports_api().create(_company_id(), body))


@api.get("/imports")
def list_imports(status: Annotated[ImportStatus | None, Query()] = None,
                 limit: Annotated[int, Query(ge=1, le=100)] = 25,
                 cursor: Annotated[str | None, Query(max_length=500)] = None) -> dict[str, Any]:
    return core.imports_api().list(_company_id(), status=status, limit=limit, cursor=cursor)


@api.get("/imports/<import_id>")
def get_import(import_id: str) -> dict[str, Any]:
    return core.imports_api().get(_company_id(), import_id)


@api.get("/imports/<import_id>/preview")
def get_preview(import_id: str) -> dict[str, Any]:
    return core.imports_api().preview(_company_id(), import_id)


@api.post("/imports/<import_id>/start")
def start_import(import_id: str, body: StartRequest) -> dict[str, Any]:
    return core.imports_api().start(_company_id(), import_id, body.column_mapping)


@api.post("/imports/<import_id>/cancel")
def cancel_import(import_id: str) -> dict[str, Any]:
    return core.imports_api().cancel(_company_id(), import_id)


@api.post("/imports/<import_id>/undo")
def undo_import(import_id: str) -> dict[str, Any]:
    return core.imports_api().undo(_company_id(), import_id)


@api.get("/imports/<import_id>/errors")
def list_errors(import_id: str, reason: Annotated[str | None, Query(max_length=64)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                cursor: Annotated[str | None, Query(max_length=500)] = None) -> dict[str, Any]:
    return core.imports_api().errors(_company_id(), import_id, reason=reason, limit=limit, cursor=cursor)


@api.get("/imports/<import_id>/errors.csv")
def errors_csv(import_id: str) -> Response[str]:
    body = "".join(core.imports_api().errors_csv(_company_id(), import_id))
    return Response(status_code=200, content_type="text/csv; charset=utf-8", body=body,
                    headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'})


@api.get("/openapi.json")
def openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                    body=api.get_openapi_json_schema(title="leadimport API", version="1.0.0"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.resolve(event, context)
