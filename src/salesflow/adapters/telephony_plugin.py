"""The builtin plugin that offers salesflow's call sources: ``asterisk-csv`` and ``twilio-json``.

The sources are imported only when one is built, so registering them costs nothing.
"""

from __future__ import annotations

from typing import Any

from salesflow.plugins.hookspecs import CallSourceType, hookimpl

__all__ = ["asterisk_csv", "salesflow_register_call_sources", "twilio_json"]


def asterisk_csv(**options: Any) -> Any:
    """An :class:`~salesflow.adapters.telephony_asterisk.AsteriskCsvSource` (``path=``,
    ``timezone=``, ...)."""
    from salesflow.adapters.telephony_asterisk import AsteriskCsvSource

    return AsteriskCsvSource(**options)


def twilio_json(**options: Any) -> Any:
    """A :class:`~salesflow.adapters.telephony_twilio.TwilioJsonSource` (``directory=`` or
    ``start=`` and ``load_page=``, ...)."""
    from salesflow.adapters.telephony_twilio import TwilioJsonSource

    return TwilioJsonSource(**options)


@hookimpl(trylast=True)
def salesflow_register_call_sources() -> list[CallSourceType]:
    """The builtin call sources."""
    return [
        CallSourceType(
            name="asterisk-csv",
            factory=asterisk_csv,
            description="Asterisk cdr-csv Master.csv files (talk time = billsec)",
        ),
        CallSourceType(
            name="twilio-json",
            factory=twilio_json,
            description="Twilio Call resource JSON pages, following next_page_uri",
        ),
    ]
