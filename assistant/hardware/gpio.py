"""gpiozero devices (the button, the status LED), opened with one line saying why one cannot be."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

from assistant.errors import DeviceError

T = TypeVar("T")


def open_gpio(create: Callable[[], T], what: str, error: type[DeviceError] = DeviceError) -> T:
    """Create a gpiozero device, or raise ``error`` with one line saying why it can't be.

    ``what`` names the device for the message ("GPIO button on BCM pin 17"). gpiozero
    reports each pin library it tried as a ``PinFactoryFallback`` warning before it
    gives up with ``BadPinFactory``; those reasons go into the message instead of
    onto stderr. A mock pin factory is only ever used when ``GPIOZERO_PIN_FACTORY``
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
        reason = "no usable GPIO on this machine"
        if fallbacks:
            tried = "; ".join(f.removeprefix("Falling back from ") for f in fallbacks)
            reason = f"{reason} (tried {tried})"
    else:
        reason = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
    raise error(f"cannot use the {what}: {reason}") from failure
