"""Events to the AIcrowd grading infrastructure, as the MDX 2021 kit sends them.

When ``AICROWD_IS_GRADING`` is set, ``aicrowd_api``'s ``AIcrowdEvents`` pushes
each event as JSON onto a Redis list (``AICROWD_REDIS_HOST``/``_PORT``/``_DB``/
``_PASSWORD``, list ``AICROWD_REDIS_COMMUNICATION_CHANNEL``); a blocking event
then waits for the infrastructure's acknowledgement on
``AICROWD_BLOCKING_RESPONSE_CHANNEL``. Without the variable every call here
does nothing, so a local run needs no Redis.
"""

import os

import aicrowd_api
import aicrowd_api.events  # loaded explicitly: aicrowd-cli's copy of aicrowd_api/__init__.py is empty

#: Prefix of the payload's ``event_type``, naming the challenge.
EVENT_PREFIX = "music_demixing"

aicrowd_events = aicrowd_api.events.AIcrowdEvents()


def is_grading():
    """True (the variable's text) when running on the grader."""
    return os.getenv("AICROWD_IS_GRADING", False)


def _register(event_type, message, blocking=False, **payload):
    return aicrowd_events.register_event(
        event_type=event_type,
        message=message,
        payload={"event_type": f"{EVENT_PREFIX}:{message}", **payload},
        blocking=blocking,
    )


def execution_start():
    """Setup begins."""
    _register(aicrowd_events.AICROWD_EVENT_INFO, "execution_started")


def execution_running():
    """Setup is done; predictions begin (progress 0)."""
    _register(aicrowd_events.AICROWD_EVENT_INFO, "execution_progress", progress=0.0)


def execution_progress(progress):
    """Fraction of the songs done."""
    _register(aicrowd_events.AICROWD_EVENT_INFO, "execution_progress", progress=progress)


def execution_success():
    """Every song predicted and verified; waits for the infrastructure's acknowledgement."""
    _register(aicrowd_events.AICROWD_EVENT_SUCCESS, "execution_success", blocking=True,
              predictions_output_path=os.getenv("PREDICTIONS_OUTPUT_PATH", False))


def execution_error(error):
    """The run failed with ``error`` (a traceback); waits for the acknowledgement."""
    _register(aicrowd_events.AICROWD_EVENT_ERROR, "execution_error", blocking=True, error=error)
