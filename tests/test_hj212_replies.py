"""The four answers, in the form of the edition the datalogger speaks."""

from __future__ import annotations

from drivers.hj212.codec import encode_segment, parse
from drivers.hj212.replies import (
    ExeRtn,
    QnRtn,
    answered_qn,
    execution_result,
    owed,
    request_answer,
)

HEAD_2017 = "QN=20240101120000001;ST=39;CN={cn};PW=123456;MN=MN0001;Flag={flag};CP=&&{cp}&&"
HEAD_2005 = "QN=20040516010101001;ST=32;CN={cn};PW=123456;MN=88888880000001;Flag={flag};CP=&&{cp}&&"


def _frame(head: str, cn: str, flag: str, cp: str = "") -> bytes:
    return encode_segment(head.format(cn=cn, flag=flag, cp=cp))


def _segment(answer: bytes | None) -> str:
    assert answer is not None
    return answer[6:-6].decode()


def test_a_2017_upload_gets_its_9014_with_the_qn_in_the_header() -> None:
    answer = owed(parse(_frame(HEAD_2017, "2011", "5", "a34002-Rtd=1")))
    assert _segment(answer) == "QN=20240101120000001;ST=91;CN=9014;PW=123456;MN=MN0001;Flag=4;CP=&&&&"


def test_a_2005_upload_gets_its_9014_in_the_2005_form() -> None:
    answer = owed(parse(_frame(HEAD_2005, "2011", "1", "01-Rtd=1")))
    assert _segment(answer) == (
        "ST=91;CN=9014;PW=123456;MN=88888880000001;Flag=0;CP=&&QN=20040516010101001;CN=2011&&"
    )
    assert answered_qn(parse(answer or b"")) == "20040516010101001"


def test_a_time_calibration_request_gets_a_notification_answer() -> None:
    assert "CN=9013;" in _segment(owed(parse(_frame(HEAD_2017, "1013", "5"))))
    assert "CN=9013;" in _segment(owed(parse(_frame(HEAD_2005, "1013", "1"))))


def test_no_answer_without_flag_a_nor_to_an_answer() -> None:
    assert owed(parse(_frame(HEAD_2017, "2011", "4", "a34002-Rtd=1"))) is None
    assert owed(parse(_frame(HEAD_2017, "9014", "5"))) is None
    assert owed(parse(_frame(HEAD_2017, "9012", "5", "ExeRtn=1"))) is None


def test_request_answers_and_execution_results_in_both_editions() -> None:
    command = parse(_frame(HEAD_2017, "1062", "5", "RtdInterval=30"))
    assert _segment(request_answer(command, QnRtn.READY)).endswith(
        "CN=9011;PW=123456;MN=MN0001;Flag=4;CP=&&QnRtn=1&&"
    )
    assert _segment(execution_result(command, ExeRtn.SUCCESS)).endswith("Flag=4;CP=&&ExeRtn=1&&")
    old = parse(_frame(HEAD_2005, "1062", "1", "RtdInterval=30"))
    assert _segment(request_answer(old, QnRtn.PW_ERROR)).endswith(
        "Flag=0;CP=&&QN=20040516010101001;QnRtn=3&&"
    )
    assert answered_qn(parse(execution_result(old, ExeRtn.SUCCESS))) == "20040516010101001"
