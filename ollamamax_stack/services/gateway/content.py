"""Content parts of a message: text joined, images as Ollama's base64 `images`.

A data URL is decoded here (checked, passed on as its base64); an http(s) URL becomes an
`ImageFetch`, which the handler fetches (services/gateway/images.py) before the request
leaves for the node.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from ollamamax_stack.services.gateway.errors import bad


@dataclass(slots=True)
class ImageFetch:
    """An image to fetch into `images[slot]`; `param` names the part for errors."""

    images: list[str]
    slot: int
    url: str
    param: str


def data_url(url: str, param: str) -> str:
    """The base64 of a `data:image/...;base64,` URL (checked)."""
    head, _, data = url.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64") or not data:
        raise bad(f"{param} must be a base64 data URL or an http(s) URL", param)
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{param} is not valid base64", param) from None
    return data


def image_url(part: dict[str, Any], param: str) -> str:
    """The URL of an `image_url` (chat) or `input_image` (responses) part."""
    value = part.get("image_url")
    if isinstance(value, dict):
        value = value.get("url")
    if not isinstance(value, str) or not value:
        raise bad(f"{param}.image_url must hold a URL", f"{param}.image_url")
    return value


def add_image(url: str, images: list[str], fetches: list[ImageFetch], param: str) -> None:
    """Append the image at `url` to `images` (now, or as a fetch for later)."""
    if url.startswith("data:"):
        images.append(data_url(url, param))
    elif url.startswith(("http://", "https://")):
        fetches.append(ImageFetch(images, len(images), url, param))
        images.append("")
    else:
        raise bad(f"{param} must be a base64 data URL or an http(s) URL", param)


TEXT_TYPES = ("text", "input_text", "output_text")
IMAGE_TYPES = ("image_url", "input_image")


def parts(value: list[Any], where: str, fetches: list[ImageFetch]) -> tuple[str, list[str]]:
    """Text and images of a content-part array (`where` names it: `messages[0].content`)."""
    texts: list[str] = []
    images: list[str] = []
    for index, part in enumerate(value):
        param = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_TYPES:
            if not isinstance(part.get("text"), str):
                raise bad(f"{param}.text must be a string", f"{param}.text")
            texts.append(part["text"])
        elif kind in IMAGE_TYPES:
            add_image(image_url(part, param), images, fetches, f"{param}.image_url")
        else:
            raise bad(f"{param}.type must be one of text, image_url (got {kind!r}): Ollama "
                      "takes text and images", f"{param}.type")
    return "".join(texts), images
