"""`gridgate hj212 decode`: one JSON object per frame line, with the reason for each rejection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from drivers.hj212.codec import crc16_modbus
from tests.test_hj212_codec import APPENDIX_A, FRAMES, FRAMES_FILE

ROOT = Path(__file__).resolve().parent.parent


def _decode(*args: str, stdin: bytes = b"") -> tuple[int, list[dict[str, object]]]:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "hj212", "decode", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    return result.returncode, [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_a_file_of_good_frames_decodes_one_object_per_frame() -> None:
    code, decoded = _decode(str(FRAMES_FILE))
    assert code == 0 and len(decoded) == len(FRAMES)
    first = decoded[0]
    assert first["ok"] is True and first["crc"] == "1C80" and first["length"] == 101
    assert first["fields"] == {
        "QN": "20160801085857223",
        "ST": "32",
        "CN": "1062",
        "PW": "100000",
        "MN": "010000A8900016F000169DC0",
        "Flag": "5",
    }
    assert first["flag"] == {"version": 1, "split": False, "answer": True}
    assert first["cp"] == [{"RtdInterval": "30"}]


def test_rejected_frames_from_stdin_say_why() -> None:
    damaged = APPENDIX_A.replace(b"RtdInterval=30", b"RtdInterval=31")
    lines = b"\n".join([APPENDIX_A, damaged, b"##0099" + APPENDIX_A[6:], b"hello", b""])
    code, decoded = _decode(stdin=lines)
    assert code == 1
    assert [d["ok"] for d in decoded] == [True, False, False, False]
    assert [d.get("reason") for d in decoded[1:]] == ["crc", "length", "header"]
    assert decoded[1]["crc_expected"] == "2080" and decoded[1]["cp"] == [{"RtdInterval": "31"}]
    assert decoded[2]["error"] == "length field says 99, data segment has 101"
    assert [d["line"] for d in decoded] == [1, 2, 3, 4]


def test_it_says_which_tolerances_a_frame_needed_and_what_to_configure() -> None:
    modbus = APPENDIX_A[:-4] + b"%04X" % crc16_modbus(APPENDIX_A[6:-4])
    lower = APPENDIX_A[:-4] + APPENDIX_A[-4:].lower()
    code, decoded = _decode(stdin=b"\n".join([lower, modbus]))
    assert code == 1 and decoded[0]["ok"] and decoded[0]["tolerated"] == ["crc_lower_case"]
    assert decoded[1]["reason"] == "crc" and 'set crc = "modbus"' in str(decoded[1]["error"])
    code, decoded = _decode("--crc", "modbus", stdin=modbus)
    assert code == 0 and decoded[0]["tolerated"] == ["crc_modbus"]
