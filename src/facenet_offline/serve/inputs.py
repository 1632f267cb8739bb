"""A request's images and options, from multipart uploads or JSON with base64, within the request limits.

Only bytes sent in the request are ever read: a field naming a path or a URL is refused, never
followed. An image's pixel count is read from its header and a photo over the limit is refused
before it is decoded (a decompression bomb costs nothing); the rest is decoded exactly as the
library decodes it (EXIF orientation, colour, the size bound, every kind of bad file).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
from dataclasses import dataclass, field

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import Request

from ..data.images import DecodedImage, ImageSource, load_image
from ..errors import ImageError
from .config import RequestLimits

IMAGE_FIELDS = ("images", "probe", "targets")  # the fields that hold images, on every endpoint that takes any
_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


class RequestError(Exception):
    """A request the service cannot serve: an HTTP status, a stable code and a message naming the fix."""

    def __init__(self, status: int, code: str, message: str, input: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.input, self.headers = status, code, message, input, headers or {}


@dataclass
class RequestData:
    """The images of each image field (label and bytes) and the other fields, as sent."""

    images: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def option(self, name: str, kind, default=None):
        """Field ``name`` as ``kind`` (bool, int, float or str), or a 422 naming the field."""
        value = self.options.get(name)
        if value is None or value == "":
            return default
        try:
            if kind is bool:
                if isinstance(value, bool):
                    return value
                if str(value).lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return str(value).lower() in ("true", "1", "yes")
            return kind(value)
        except (TypeError, ValueError):
            raise RequestError(422, "bad_field", f"{name}={value!r}: send {_KINDS[kind]}.", name) from None

    def expect(self, images: tuple[str, ...], options: tuple[str, ...]) -> RequestData:
        """Refuse a field the endpoint does not take: a misspelt option would otherwise be silently ignored."""
        unknown = [n for n in (*self.images, *self.options) if n not in images + options]
        if unknown:
            valid = ", ".join(images + options) or "none"
            raise RequestError(422, "unknown_field", f"{unknown[0]}: not a field of this endpoint; its fields: "
                                                     f"{valid}.", unknown[0])
        return self


async def read_request(request: Request, limits: RequestLimits, images: tuple[str, ...] = (),
                       options: tuple[str, ...] = ()) -> RequestData:
    """Multipart (image fields as files, options as fields) or JSON (image fields as base64), or a 4xx.

    ``images`` and ``options`` are the fields the endpoint takes; any other is refused by name."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        data = await _from_form(request, limits)
    elif kind == "application/json":
        data = _from_json(await request.body())
    else:
        raise RequestError(415, "unsupported_media_type", f"content-type {kind or '(none)'}: send multipart/form-data "
                                                          "(files) or application/json (base64 images).")
    count = sum(len(v) for v in data.images.values())
    if count > limits.max_images:
        raise RequestError(413, "too_many_images", f"{count} images in one request; send at most "
                                                   f"{limits.max_images} per request.")
    return data.expect(images, options)


async def _from_form(request: Request, limits: RequestLimits) -> RequestData:
    try:
        form = await request.form(max_files=limits.max_images + 1, max_fields=64, max_part_size=limits.max_request_bytes)
    except Exception as exc:  # noqa: BLE001 - starlette's multipart errors have no common base worth naming
        raise RequestError(400, "bad_multipart", f"the multipart body could not be read ({exc}); send files as "
                                                 "form fields named images (or probe and targets).") from None
    data = RequestData()
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name not in IMAGE_FIELDS:
                raise RequestError(422, "unknown_field", f"a file in field {name!r}; images go in "
                                                         f"{', '.join(IMAGE_FIELDS)}.", name)
            index = len(data.images.get(name, []))
            label = f"{name}[{index}]" + (f" ({value.filename})" if value.filename else "")
            data.images.setdefault(name, []).append((label, await value.read()))
        elif name in IMAGE_FIELDS:
            raise RequestError(422, "not_a_file", f"field {name!r} holds text; upload the image itself as a file "
                                                  "(paths and URLs are never read).", name)
        else:
            data.options[name] = value
    return data


def _from_json(body: bytes) -> RequestData:
    try:
        payload = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, "bad_json", f"the body is not JSON ({exc}).") from None
    if not isinstance(payload, dict):
        raise RequestError(400, "bad_json", "the body must be a JSON object.")
    data = RequestData()
    for name, value in payload.items():
        if name not in IMAGE_FIELDS:
            data.options[name] = value
            continue
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            label = f"{name}[{index}]"
            if isinstance(item, dict):
                label += f" ({item.get('name')})" if item.get("name") else ""
                item = item.get("data")
            if not isinstance(item, str):
                raise RequestError(422, "bad_image_field", f"{label}: send the image as a base64 string (or "
                                                           "{\"data\": base64, \"name\": ...}).", label)
            if item.startswith("data:") and ";base64," in item[:80]:  # a data URL, as browsers make them
                item = item.split(";base64,", 1)[1]
            if item.startswith("file:") or "://" in item[:16]:
                raise RequestError(422, "not_image_data", f"{label}: looks like a URL or a path; the service reads "
                                                          "only image bytes sent in the request, as base64.", label)
            try:
                raw = base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError):
                raise RequestError(422, "bad_base64", f"{label}: not valid base64; encode the file's bytes (a "
                                                      "path or a URL is never read).", label) from None
            data.images.setdefault(name, []).append((label, raw))
    return data


def decode(label: str, raw: bytes, limits: RequestLimits) -> DecodedImage | ImageError:
    """One sent image decoded as the library decodes files, or its ImageError; over ``max_pixels``, refused unread."""
    too_many = f"over the {limits.max_pixels:,} pixels this service decodes; downscale it first."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as img:
                width, height = img.size
        if width * height > limits.max_pixels:
            return ImageError(label, f"{width} x {height} pixels, {too_many}", code="too_many_pixels")
    except Image.DecompressionBombError:  # PIL's own bound, far above ours
        return ImageError(label, f"its header promises {too_many}", code="too_many_pixels")
    except Exception:  # noqa: BLE001 - unreadable headers are for load_image to name
        pass
    try:
        return load_image(ImageSource(label, data=raw))
    except ImageError as exc:
        return exc
