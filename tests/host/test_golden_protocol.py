"""The reference encoder/decoder, by hand-checked bytes and round trips."""

import pytest

from golden.host_protocol import (ProtocolError, Response, crc16, decode_responses, encode_request,
                                  encode_response)
from hw.host.config import CMD_READ_BLOCK, CMD_WRITE_REG, STATUS_BAD_ADDRESS, STATUS_OK


def test_request_layout():
    frame = encode_request(CMD_WRITE_REG, 0x42, 0x01020304, words=[0xAABBCCDD])
    assert frame[:9] == bytes([0xA5, 0x02, 0x42, 0x04, 0x03, 0x02, 0x01, 0x01, 0x00])
    assert int.from_bytes(frame[9:11], "big") == crc16(frame[:9])
    assert frame[11:15] == bytes([0xDD, 0xCC, 0xBB, 0xAA])
    assert int.from_bytes(frame[15:17], "big") == crc16(frame[11:15])
    assert len(encode_request(CMD_READ_BLOCK, 0, 0, count=300)) == 11


def test_response_round_trip_and_errors():
    responses = [Response(CMD_READ_BLOCK, 7, STATUS_OK, (1, 0xFFFFFFFF)),
                 Response(CMD_WRITE_REG, 8, STATUS_BAD_ADDRESS)]
    data = b"".join(r.encode() for r in responses)
    assert data[:6] == bytes([0x5A, 0x03, 7, 0, 2, 0])
    assert decode_responses(data) == responses
    assert encode_response(CMD_WRITE_REG, 8, STATUS_BAD_ADDRESS) == data[-8:]
    corrupt = bytearray(data)
    corrupt[7] ^= 0x10
    with pytest.raises(ProtocolError, match="CRC"):
        decode_responses(corrupt)
    with pytest.raises(ProtocolError, match="truncated"):
        decode_responses(data[:-1])
    with pytest.raises(ProtocolError, match="not a response sync"):
        decode_responses(b"\x00" + data)
