"""Map every known failure to a 4xx whose message names the problem."""

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from domain.errors import DomainError, UnknownReference
from ledger.errors import LedgerError, UnknownPosition
from services.checkout import HoldNotFound, OptionUnavailable
from services.orders import NothingToAcknowledge

# A domain error is a 422 (the request cannot be done as asked), except these.
DOMAIN_ERROR_STATUS: dict[type[DomainError], int] = {
    OptionUnavailable: 409,  # not among the cart's options as it stands now
    HoldNotFound: 404,
    NothingToAcknowledge: 409,  # as the running order's own validator answers
}


class ApiError(Exception):
    def __init__(self, status_code: int, error: str, message: str) -> None:
        self.status_code = status_code
        self.error = error
        self.message = message
        super().__init__(message)


def _body(error: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": error, "message": message, **extra}


def _field_path(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_field_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        details = [
            {"field": _field_path(tuple(e["loc"])), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422,
            content=_body("invalid_request", "; ".join(problems), detail=details),
        )

    @app.exception_handler(ValidationError)
    async def _invalid_for_a_contract(_: Request, exc: ValidationError) -> JSONResponse:
        """A request value the route's schema let through but a model it builds refuses (a
        workflow payload's tighter length, say): the request's fault, so a 422 naming the
        fields, not a 500."""
        problems = [f"{_field_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        return JSONResponse(
            status_code=422,
            content=_body("invalid_request", f"{exc.title}: " + "; ".join(problems)),
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        """The framework's own refusals (unknown route, wrong method, unreadable body) in the
        same shape as ours."""
        error = getattr(exc, "error", None) or HTTPStatus(exc.status_code).phrase.lower()
        return JSONResponse(
            status_code=exc.status_code,
            content=_body(error.replace(" ", "_"), str(exc.detail)),
            headers=exc.headers,
        )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content=_body(exc.error, exc.message))

    @app.exception_handler(UnknownReference)
    async def _unknown_reference(_: Request, exc: UnknownReference) -> JSONResponse:
        return JSONResponse(status_code=422, content=_body(exc.code, str(exc), field=exc.field))

    @app.exception_handler(UnknownPosition)
    async def _unknown_position(_: Request, exc: UnknownPosition) -> JSONResponse:
        return JSONResponse(status_code=404, content=_body(exc.code, str(exc)))

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        status = next((s for t, s in DOMAIN_ERROR_STATUS.items() if isinstance(exc, t)), 422)
        return JSONResponse(status_code=status, content=_body(exc.code, str(exc)))

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, exc: IntegrityError) -> JSONResponse:
        # A concurrent writer won a race the services do not serialise: nothing of this
        # request was written (its transaction rolled back), and trying again is safe.
        return JSONResponse(
            status_code=409,
            content=_body("conflict", "a concurrent change conflicted with this one; retry it"),
        )

    @app.exception_handler(LedgerError)
    async def _ledger(_: Request, exc: LedgerError) -> JSONResponse:
        return JSONResponse(status_code=409, content=_body(exc.code, str(exc)))
