"""The native API reads its JSON bodies itself: strictly, after authentication, naming every problem.

FastAPI's own body parsing answered invalid UTF-8, deep nesting and over-long integers alike with a
bare 400 "There was an error parsing the body", let duplicate keys through last-wins and ``NaN``
through to a range check. Here a body goes through ``engine.api.strict_json`` (the reader of the
CDS Hooks endpoints too) and then through the pydantic model, and each refusal names its JSON
pointer: 415 when it is not declared JSON, 400 when it is not acceptable JSON, 422 when it is JSON
but not a valid request. As a dependency it runs after the route's ``authenticate``, so an
unauthenticated caller is refused before its body is read.

FastAPI documents only bodies it parses, so ``documented`` puts the model back into the OpenAPI
description: the operation's ``requestBody`` names it, and ``install_schemas`` adds it (and the
models it uses) to the components.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, ValidationError

from engine.api import strict_json
from engine.api.browser_guard import JSON_TYPES
from engine.errors import InputError, InputProblem
from engine.validation import locate

_REF = "#/components/schemas/{model}"
M = TypeVar("M", bound=BaseModel)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_document(request: Request) -> Any:
    """The body as strict JSON; 415 (``HTTPException``) or 400 (``strict_json.JsonProblem``) otherwise."""
    media_type = _media_type(request)
    if media_type not in JSON_TYPES:
        raise HTTPException(415, f"Content-Type must be application/json, not {media_type or 'missing'!r}")
    return strict_json.loads(await request.body())


def validated(model: type[M], document: Any) -> M:
    """``document`` as ``model``, or ``InputError`` (422) with each problem at its JSON pointer."""
    if not isinstance(document, dict):
        raise InputError([InputProblem("", "the request body must be a JSON object", "type")])
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InputError([InputProblem(p.pointer, p.message, p.kind) for p in locate(exc, model)]) from exc


def body_of(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency giving the request's body as ``model`` (use with ``Depends``)."""

    async def dependency(request: Request) -> M:
        return validated(model, await read_document(request))

    return dependency


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is read by ``body_of(model)``."""
    schema = {"$ref": _REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Not acceptable JSON (encoding, syntax, duplicate key, nesting, number); errors name pointers"
    },
    415: {"description": "The body is not declared application/json"},
    422: {"description": "JSON, but not a valid request; errors name each field's pointer"},
}


def install_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add ``models`` (and the models they use) to the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            own = model.model_json_schema(ref_template=_REF)
            components.update(own.pop("$defs", {}))
            components[model.__name__] = own
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
