"""GeoReport v2 answers in either of its two formats: JSON arrays and the XML documents of the
specification (<services>, <service_definition>, <service_requests>, <errors>)."""

from datetime import datetime
from typing import Any, Literal
from xml.etree import ElementTree

from fastapi.responses import JSONResponse, Response

Format = Literal["json", "xml"]
# The element each list's items are written as, by the list's own element name.
XML_ITEMS = {"services": "service", "service_requests": "request", "errors": "error",
             "attributes": "attribute", "values": "value"}


class Open311Error(Exception):
    """Answered in the standard error format: [{"code": status, "description": ...}]."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


def respond(fmt: Format, root: str, body: Any, status: int = 200) -> Response:
    """`body` is a list (written under `root`, each item as XML_ITEMS[root]) or one object
    (written as `root` itself, e.g. a service definition)."""
    if fmt == "json":
        return JSONResponse(_jsonable(body), status_code=status)
    element = ElementTree.Element(root)
    if isinstance(body, list):
        for item in body:
            _fill(ElementTree.SubElement(element, XML_ITEMS[root]), item)
    else:
        _fill(element, body)
    text = ElementTree.tostring(element, encoding="unicode", xml_declaration=False)
    return Response('<?xml version="1.0" encoding="utf-8"?>' + text, status_code=status,
                    media_type="text/xml; charset=utf-8")


def error_response(fmt: Format, error: Open311Error) -> Response:
    return respond(fmt, "errors", [{"code": error.status, "description": error.description}],
                   status=error.status)


def _fill(element: ElementTree.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ElementTree.SubElement(element, key), child)
    elif isinstance(value, list):
        for item in value:
            _fill(ElementTree.SubElement(element, XML_ITEMS[element.tag]), item)
    elif value is not None:
        element.text = _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat()
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat()
    return value
