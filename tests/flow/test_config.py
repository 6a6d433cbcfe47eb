"""The config machinery every generator uses (hw/lib/config.py)."""

import dataclasses
import json
import typing

import pytest

from hw.lib.block_configs import RequantizerConfig, StreamFIFOConfig
from hw.lib.config import SQ, UQ, Config, QFormat, check_int


def test_qformat_widths_and_ranges():
    assert SQ(1, 7).width == 8 and (SQ(1, 7).min_int, SQ(1, 7).max_int) == (-128, 127)
    assert UQ(4, 4).width == 8 and (UQ(4, 4).min_int, UQ(4, 4).max_int) == (0, 255)
    assert SQ(-2, 10).width == 8
    assert str(SQ(3, 5)) == "SQ(3, 5)" and QFormat.parse("UQ( 2 ,6 )") == UQ(2, 6)


@pytest.mark.parametrize("text", ["Q(1,2)", "SQ(1)", "SQ(a,b)", "SQ(1,2", ""])
def test_qformat_parse_rejects(text):
    with pytest.raises(ValueError, match="not a fixed-point format"):
        QFormat.parse(text)


def test_qformat_rejects_too_narrow():
    with pytest.raises(ValueError, match="too small"):
        SQ(1, 0)
    with pytest.raises(ValueError, match="too small"):
        UQ(0, 0)


def test_from_params_parses_every_field_type():
    config = RequantizerConfig.from_params({"src": "UQ(4,4)", "dst": "SQ(2, 3)",
                                            "rounding": "trunc", "registered": "off"})
    assert config == RequantizerConfig(src=UQ(4, 4), dst=SQ(2, 3), rounding="trunc",
                                       registered=False)
    assert StreamFIFOConfig.from_params({"depth": "0x20"}).depth == 32


@pytest.mark.parametrize("params, match", [
    ({"dept": "3"}, r"StreamFIFOConfig has no parameter 'dept': expected one of width, depth"),
    ({"depth": "many"}, r"StreamFIFOConfig.depth='many' is not an integer"),
    ({"depth": "0"}, r"StreamFIFOConfig.depth=0 is out of range: expected 1..1048576"),
    ({"width": "5000"}, r"StreamFIFOConfig.width=5000 is out of range"),
])
def test_from_params_errors_name_the_parameter(params, match):
    with pytest.raises(ValueError, match=match):
        StreamFIFOConfig.from_params(params)


def test_choice_and_bool_errors():
    with pytest.raises(ValueError, match=r"rounding='nearest' is not valid: expected one of"):
        RequantizerConfig.from_params({"rounding": "nearest"})
    with pytest.raises(ValueError, match=r"registered='maybe' is not a boolean"):
        RequantizerConfig.from_params({"registered": "maybe"})
    with pytest.raises(ValueError, match=r"RequantizerConfig.src must be a QFormat"):
        RequantizerConfig(src="SQ(1,2)")


@pytest.mark.parametrize("config", [StreamFIFOConfig(width=3, depth=7),
                                    RequantizerConfig(src=UQ(9, 3), registered=False)])
def test_json_round_trip(config):
    data = json.loads(config.to_json())
    assert data["type"] == type(config).__name__
    assert type(config).from_dict(data["params"]) == config


def test_config_is_frozen_and_replace_validates():
    config = StreamFIFOConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.depth = 3
    assert config.replace(depth=3).depth == 3
    with pytest.raises(ValueError, match="depth"):
        config.replace(depth=-1)


def test_check_int_rejects_bools_and_floats():
    for value in (True, 1.0, "1"):
        with pytest.raises(ValueError, match="x must be an integer"):
            check_int("x", value)


def test_float_fields_parse():
    @dataclasses.dataclass(frozen=True)
    class WithFloat(Config):
        gain: float = 1.0
        mode: typing.Literal["a", "b"] = "a"

    assert WithFloat.from_params({"gain": "2.5", "mode": "b"}) == WithFloat(2.5, "b")
    with pytest.raises(ValueError, match=r"WithFloat.gain='x' is not a number"):
        WithFloat.from_params({"gain": "x"})
