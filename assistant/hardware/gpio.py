"""gpiozero devices (the button, the status LED), opened with one line saying why one cannot be."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import TypeVar

from assistant.errors import DeviceError

log = logging.getLogger(__name__)

T = TypeVar("T")

NO_GPIO = "no usable GPIO on this machine"
"""The reason given when the machine has no GPIO at all (a laptop): said plainly, with
the pin libraries gpiozero tried and why each failed logged only with ``--debug``."""


def open_gpio(create: Callable[[], T], what: str, error: type[DeviceError] = DeviceError) -> T:
    """Create a gpiozero device, or raise ``error`` with one line saying why it can't be.

    ``what`` names the device for the message ("GPIO button on BCM pin 17"). gpiozero
    reports each pin library it tried as a ``PinFactoryFallback`` warning before it
    gives up with ``BadPinFactory``; those reasons (Python import errors, mostly) are
    of use to a developer only, so they go to the debug log instead of onto stderr or
    into the message. A mock pin factory is only ever used when ``GPIOZERO_PIN_FACTORY``
    (or ``Device.pin_factory``) says so; gpiozero handles that itself.
    """
    from gpiozero.exc import BadPinFactory, PinFactoryFallback

    failure: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            device = create()
        # Anything at all: third-party pin libraries raise their own types
        # (lgpio.error, RPi.GPIO's RuntimeError, PermissionError on /dev/gpiochip*).
        except Exception as exc:  # noqa: BLE001
            failure = exc
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, PinFactoryFallback)]
    for w in caught:  # pass on every other warning as it was
        if not issubclass(w.category, PinFactoryFallback):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if failure is None:
        return device
    if isinstance(failure, BadPinFactory):
        reason = NO_GPIO
        if fallbacks:
            tried = "; ".join(f.removeprefix("Falling back from ") for f in fallbacks)
            log.debug("the pin libraries gpiozero tried for the %s: %s", what, tried)
    else:
        reason = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
    raise error(f"cannot use the {what}: {reason}") from failure
