"""The OpenAPI document's schemas as validators, for tests that meet answers schemathesis can't
provoke (a 202 needs a homeserver that is down or stuck)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema

from bridge.api.openapi import openapi_document


@cache
def _validator(schema: str) -> jsonschema.Draft202012Validator:
    document = openapi_document()
    # The component refers to others by "#/components/…": resolve them in the whole document.
    wrapper = {**document, "$ref": f"#/components/schemas/{schema}"}
    return jsonschema.Draft202012Validator(wrapper)


def assert_conforms(value: Any, schema: str) -> None:
    """Fail with every violation when `value` is not a `schema` of the OpenAPI document."""
    errors = [e.message for e in _validator(schema).iter_errors(value)]
    assert not errors, f"not a {schema}: {errors}"
