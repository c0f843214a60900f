"""The Vosk model site's list of models, and the network code that reads from the site.

This package is the only part of the project that uses the network, and only when the
user asks for it (``intervisie model install``).
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from assistant import __version__
from assistant.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "vosk-model-small-nl-0.22"
"""The Dutch model the assistant uses unless configured otherwise (39 MB, Apache-2.0)."""

DEFAULT_SITE = "https://alphacephei.com/vosk/models"
"""The Vosk model site; its ``model-list.json`` describes every model it offers."""

MODEL_LIST = "model-list.json"
"""Name of the model site's list of models."""

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for the model site to connect or to send the next bytes."""

LANGUAGE = "nl"


CHUNK = 64 * 1024
_LIST_LIMIT = 16 * 1024 * 1024


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_MD5 = re.compile(r"[0-9a-f]{32}\Z")


# ------------------------------------------------------------------ the model list


@dataclass(frozen=True)
class ModelInfo:
    """One model as the model site's list describes it."""

    name: str
    """Model name, which is also the name of its folder."""
    url: str
    """Where its zip archive is."""
    size: int
    """Size of the zip archive in bytes."""
    md5: str
    """md5 of the zip archive, lower-case hex."""
    lang: str = ""
    """Language code, e.g. ``nl``."""
    obsolete: bool = False
    """Whether the site marks it as superseded."""
    size_text: str = ""
    """The site's own rendering of the size, e.g. ``39M``."""


def list_url(site: str) -> str:
    """The address of the model list on a model site."""
    return site.rstrip("/") + "/" + MODEL_LIST


def fetch_model_list(
    site: str = DEFAULT_SITE, timeout: float = DEFAULT_TIMEOUT, hint: str = "check the network"
) -> list[ModelInfo]:
    """Download and parse the model site's list; ModelError (ending in ``hint``) on failure."""
    url = list_url(site)
    with open_url(url, timeout, hint) as response:
        try:
            data = response.read(_LIST_LIMIT + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise ModelError(f"the model list from {url_host(url)} broke off ({describe_error(exc)}): {hint}") from None
    if len(data) > _LIST_LIMIT:
        raise ModelError(f"the model list at {url} is unreasonably large: is --site right?")
    return parse_model_list(data, url)


def parse_model_list(data: bytes, source: str) -> list[ModelInfo]:
    """The models in a ``model-list.json``; entries without a usable name, url, size or md5 are skipped.

    ``source`` is the list's address: relative model addresses are resolved against it.
    """
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ModelError(f"the model list at {source} is not valid JSON ({exc}): is --site right?") from None
    if not isinstance(raw, list):
        raise ModelError(f"the model list at {source} is not a list of models: is --site right?")
    models = []
    for entry in raw:
        info = _model_info(entry, source)
        if info is None:
            log.debug("skipping an unusable entry of %s: %r", source, entry)
        else:
            models.append(info)
    return models


def _model_info(entry: Any, source: str) -> ModelInfo | None:
    if not isinstance(entry, dict):
        return None
    name, url, md5, size = entry.get("name"), entry.get("url"), entry.get("md5"), entry.get("size")
    if not (isinstance(name, str) and NAME_PATTERN.match(name) and isinstance(url, str) and isinstance(md5, str)):
        return None
    if isinstance(size, str) and size.strip().isdigit():
        size = int(size)
    if isinstance(size, float) and size.is_integer():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return None
    md5 = md5.strip().lower()
    if not _MD5.match(md5):
        return None
    obsolete = entry.get("obsolete", False)
    lang = entry.get("lang", "")
    size_text = entry.get("size_text", "")
    return ModelInfo(
        name=name,
        url=urllib.parse.urljoin(source, url),
        size=size,
        md5=md5,
        lang=lang if isinstance(lang, str) else "",
        # The site writes it as the string "true" or "false".
        obsolete=obsolete is True or str(obsolete).lower() == "true",
        size_text=size_text if isinstance(size_text, str) else "",
    )


def find_model(models: list[ModelInfo], name: str, site: str = DEFAULT_SITE) -> ModelInfo:
    """The entry for ``name``; ModelError when the list has none."""
    for info in models:
        if info.name == name:
            return info
    raise ModelError(
        f"the model list of {site} has no model named {shown(name)}: "
        "`intervisie model list --available` shows the Dutch models it has"
    )


def dutch_models(models: list[ModelInfo]) -> list[ModelInfo]:
    """The models for :data:`LANGUAGE` (by their language code, else by their name)."""
    return [m for m in models if m.lang == LANGUAGE or (not m.lang and f"-{LANGUAGE}-" in m.name)]


# ------------------------------------------------------------------ checking a model


def shown(text: str, limit: int = 80) -> str:
    """A name or address from the user or the site, quoted for a message: control
    characters escaped (repr), and cut short with "..." when it is long."""
    quoted = repr(text)
    return quoted if len(quoted) <= limit else f"{quoted[: limit - 20]}...{quoted[-15:]}"


# ------------------------------------------------------------------ the network

_WEB_SCHEMES = ("http", "https")
"""The only kinds of address the downloader opens, also where a site redirects to."""


class _RedirectRefused(Exception):
    """The site redirected to an address that is not http or https."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class _WebOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to http or https.

    urllib's own handler also follows one to ``ftp:`` (in the clear, through another
    handler) and refuses ``file:`` as if the site had failed; both are a site (or someone
    between) sending the download where it does not belong, and are said as that.
    """

    def http_error_302(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any
    ) -> Any:
        location = headers.get("location") or headers.get("uri")
        if location is not None:
            target = urllib.parse.urljoin(req.full_url, location.strip())
            if urllib.parse.urlsplit(target).scheme.lower() not in _WEB_SCHEMES:
                fp.close()
                raise _RedirectRefused(target)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def open_url(url: str, timeout: float, hint: str) -> http.client.HTTPResponse:
    """Open an http(s) address; ModelError with a clear reason when it cannot be reached."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in _WEB_SCHEMES:
        raise ModelError(f"refusing to download from {shown(url)}: only http and https addresses are used")
    request = urllib.request.Request(url, headers={"User-Agent": f"intervisie/{__version__}"})
    host = url_host(url)
    opener = urllib.request.build_opener(_WebOnlyRedirects)
    try:
        response: http.client.HTTPResponse = opener.open(request, timeout=timeout)
    except _RedirectRefused as exc:
        raise ModelError(
            f"{host} sent the download on to {shown(exc.url)}, which is not an http or https address: "
            "refused; try again later, or check --site"
        ) from None
    except urllib.error.HTTPError as exc:
        exc.close()
        raise ModelError(f"{host} answered {exc.code} {exc.reason} for {url}: try again later, or check --site") from None
    except urllib.error.URLError as exc:
        raise ModelError(f"cannot reach {host} ({describe_error(exc.reason)}): {_with_clock(exc.reason, hint)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ModelError(f"cannot reach {host} ({describe_error(exc)}): {_with_clock(exc, hint)}") from None
    return response


def _with_clock(reason: object, hint: str) -> str:
    # A Pi has no battery-backed clock: before it has the time, every certificate fails.
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"is the system clock right (`date`)? else {hint}"
    return hint


def url_host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def describe_error(reason: object) -> str:
    """A short reason for an OS or network error, without errno noise."""
    if isinstance(reason, ssl.SSLCertVerificationError) and reason.verify_message:
        return f"certificate not accepted: {reason.verify_message}"
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    if isinstance(reason, http.client.IncompleteRead):
        return "the connection was cut"
    text = str(reason)
    return text or type(reason).__name__
