"""The four answers of HJ 212 (CN 9011-9014), in the edition the datalogger speaks.

A 2017 answer names the frame it answers by the QN in its header
(``QN=...;ST=91;CN=9014;...;Flag=4;CP=&&&&``); a 2005 one has no version bits
in its Flag and carries the QN, and for a data answer the CN, inside CP
(``ST=91;CN=9014;...;Flag=0;CP=&&QN=...;CN=2011&&``). Answers never ask for an
answer themselves.

What the gateway owes a datalogger is :func:`owed`: a data answer (9014) to an
upload with Flag bit A, a notification answer (9013) to a notification (the
logger's time calibration request, CN 1013) with bit A, nothing to an answer.
Request answers (9011, ``QnRtn``) and execution results (9012, ``ExeRtn``) are
what a datalogger sends back to the commands of :mod:`drivers.hj212.control`.
"""

from __future__ import annotations

from enum import IntEnum

from drivers.hj212.codec import CN_DATA_ANSWER, ST_SYSTEM, VERSION_2017, Frame, encode

CN_REQUEST_ANSWER = "9011"
CN_EXECUTION_RESULT = "9012"
CN_NOTIFICATION_ANSWER = "9013"
ANSWERS = frozenset({CN_REQUEST_ANSWER, CN_EXECUTION_RESULT, CN_NOTIFICATION_ANSWER, CN_DATA_ANSWER})
# Sent by a datalogger, answered with 9013: "time calibration request" (it wants its clock set).
CN_TIME_CALIBRATION_REQUEST = "1013"
NOTIFICATIONS_FROM_LOGGER = frozenset({CN_TIME_CALIBRATION_REQUEST})


class QnRtn(IntEnum):
    """9011 ``QnRtn``: whether the datalogger will carry out a request."""

    READY = 1
    REFUSED = 2
    PW_ERROR = 3
    MN_ERROR = 4
    ST_ERROR = 5
    FLAG_ERROR = 6
    QN_ERROR = 7
    CN_ERROR = 8
    CRC_ERROR = 9
    UNKNOWN_ERROR = 100


class ExeRtn(IntEnum):
    """9012 ``ExeRtn``: how carrying out a request ended."""

    SUCCESS = 1
    FAILED = 2
    CONDITION_ERROR = 3
    TIMEOUT = 4
    BUSY = 5
    SYSTEM_FAULT = 6
    NO_DATA = 100


def owed(frame: Frame) -> bytes | None:
    """The answer a datalogger's frame calls for, once what it confirms is stored; None for none."""
    cn = frame.cn or ""
    if not frame.wants_answer or cn in ANSWERS:
        return None
    if cn in NOTIFICATIONS_FROM_LOGGER:
        return notification_answer(frame)
    return data_answer(frame)


def data_answer(frame: Frame) -> bytes:
    """The CN 9014 data answer to ``frame`` (same QN, PW and MN)."""
    return _answer(frame, CN_DATA_ANSWER, (), ((("CN", frame.cn or ""),),))


def notification_answer(frame: Frame) -> bytes:
    """The CN 9013 notification answer to ``frame``."""
    return _answer(frame, CN_NOTIFICATION_ANSWER, (), ())


def request_answer(frame: Frame, rtn: QnRtn) -> bytes:
    """The CN 9011 request answer to a command ``frame``: will it be carried out."""
    items = ((("QnRtn", str(int(rtn))),),)
    return _answer(frame, CN_REQUEST_ANSWER, items, items)


def execution_result(frame: Frame, rtn: ExeRtn) -> bytes:
    """The CN 9012 execution result of a command ``frame``."""
    items = ((("ExeRtn", str(int(rtn))),),)
    return _answer(frame, CN_EXECUTION_RESULT, items, items)


def answered_qn(frame: Frame) -> str | None:
    """The QN of the frame an answer refers to: in its header (2017) or in its CP (2005)."""
    if frame.qn is not None:
        return frame.qn
    for item in frame.cp:
        for key, value in item:
            if key == "QN":
                return value
    return None


_Items = tuple[tuple[tuple[str, str], ...], ...]


def _answer(frame: Frame, cn: str, cp_2017: _Items, cp_2005_extra: _Items) -> bytes:
    pw, mn = ("PW", frame.pw or ""), ("MN", frame.mn or "")
    if frame.edition == 2017:
        head = (("QN", frame.qn or ""),) if frame.qn is not None else ()
        header = (*head, ("ST", ST_SYSTEM), ("CN", cn), pw, mn, ("Flag", str(VERSION_2017 << 2)))
        return encode(Frame(header, cp_2017))
    header = (("ST", ST_SYSTEM), ("CN", cn), pw, mn, ("Flag", "0"))
    qn = ((("QN", frame.qn),),) if frame.qn is not None else ()
    return encode(Frame(header, (*qn, *cp_2005_extra)))
