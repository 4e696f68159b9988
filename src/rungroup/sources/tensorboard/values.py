"""The parts of a TensorBoard `Value` that need the general protobuf walk: a scalar held as a
one-element `TensorProto` (TF2's tf.summary.scalar, torch with new_style=True), a summary's
plugin, and the hparams plugin's `google.protobuf.Value`s."""

from __future__ import annotations

import struct
from typing import Any

from rungroup.sources.files import MAX_NESTING
from rungroup.sources.protoreader import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    DecodeError,
    packed_doubles,
    packed_floats,
    packed_varints,
    signed,
    spans,
    text,
    to_double,
    to_float,
)
from rungroup.sources.tensorboard.proto import (
    PluginData,
    StructValue,
    SummaryMetadata,
    TensorProto,
    TensorShapeProto,
)

# TensorProto dtypes that can hold a scalar metric: dtype -> (struct format, size).
_DTYPES: dict[int, tuple[str, int]] = {
    1: ("<f", 4),  # DT_FLOAT
    2: ("<d", 8),  # DT_DOUBLE
    3: ("<i", 4),  # DT_INT32
    4: ("<B", 1),  # DT_UINT8
    5: ("<h", 2),  # DT_INT16
    6: ("<b", 1),  # DT_INT8
    9: ("<q", 8),  # DT_INT64
    10: ("<?", 1),  # DT_BOOL
    17: ("<H", 2),  # DT_UINT16
    19: ("<e", 2),  # DT_HALF
    22: ("<I", 4),  # DT_UINT32
    23: ("<Q", 8),  # DT_UINT64
}


def tensor_scalar(data: bytes, a: int, b: int) -> float | None:
    """The value of a one-element numeric TensorProto, else None."""
    dtype = 0
    elements = 1
    content: tuple[int, int] | None = None
    values: list[float] = []
    for number, wire, x, y in spans(data, a, b):
        if number == TensorProto.DTYPE and wire == VARINT:
            dtype = x
        elif number == TensorProto.TENSOR_SHAPE and wire == LEN:
            for dnum, dwire, da, db in spans(data, x, y):
                if dnum == TensorShapeProto.DIM and dwire == LEN:
                    for snum, swire, sa, _ in spans(data, da, db):
                        if snum == TensorShapeProto.DIM_SIZE and swire == VARINT:
                            elements *= signed(sa)
        elif number == TensorProto.TENSOR_CONTENT and wire == LEN:
            content = (x, y)
        elif number == TensorProto.FLOAT_VAL:  # packed or not
            expect(wire, FIXED32, "float_val")
            values.extend(packed_floats(data, x, y) if wire == LEN else [to_float(x)])
        elif number == TensorProto.DOUBLE_VAL:
            expect(wire, FIXED64, "double_val")
            values.extend(packed_doubles(data, x, y) if wire == LEN else [to_double(x)])
        elif number in TensorProto.INTEGER_VALS:
            expect(wire, VARINT, "an integer value")
            ints = packed_varints(data, x, y) if wire == LEN else [x]
            values.extend(float(signed(v)) for v in ints)
        elif number == TensorProto.HALF_VAL:
            expect(wire, VARINT, "half_val")
            bits = packed_varints(data, x, y) if wire == LEN else [x]
            if any(v > 0xFFFF for v in bits):
                raise DecodeError("half_val holds more than 16 bits")
            values.extend(float(struct.unpack("<e", v.to_bytes(2, "little"))[0]) for v in bits)
    if elements != 1 or dtype not in _DTYPES:
        return None
    if content is not None:
        fmt, size = _DTYPES[dtype]
        if content[1] - content[0] != size:
            return None
        return float(struct.unpack_from(fmt, data, content[0])[0])
    if len(values) == 1:
        return values[0]
    return None


def expect(wire: int, scalar_wire: int, name: str) -> None:
    """A value field must come with its own wire type, or packed (length-delimited)."""
    if wire not in (scalar_wire, LEN):
        raise DecodeError(f"{name} sent with wire type {wire}")


def plugin_of(data: bytes, a: int, b: int) -> tuple[str, tuple[int, int] | None]:
    """(plugin name, content span) of a SummaryMetadata."""
    name = ""
    content = None
    for number, wire, x, y in spans(data, a, b):
        if number == SummaryMetadata.PLUGIN_DATA and wire == LEN:
            for pnum, pwire, pa, pb in spans(data, x, y):
                if pnum == PluginData.PLUGIN_NAME and pwire == LEN:
                    name = text(data, pa, pb)
                elif pnum == PluginData.CONTENT and pwire == LEN:
                    content = (pa, pb)
    return name, content


def _struct_value(data: bytes, a: int, b: int, depth: int = 0) -> Any:
    """A google.protobuf.Value (lists and structs nested at most `MAX_NESTING` deep)."""
    if depth > MAX_NESTING:
        raise DecodeError(f"hparams value nested more than {MAX_NESTING} levels deep")
    for number, wire, x, y in spans(data, a, b):
        if number == StructValue.NULL_VALUE:
            return None
        if number == StructValue.NUMBER_VALUE and wire == FIXED64:
            return to_double(x)
        if number == StructValue.STRING_VALUE and wire == LEN:
            return text(data, x, y)
        if number == StructValue.BOOL_VALUE and wire == VARINT:
            return bool(x)
        if number == StructValue.LIST_VALUE and wire == LEN:
            return [
                _struct_value(data, la, lb, depth + 1)
                for n, w, la, lb in spans(data, x, y)
                if n == StructValue.LIST_VALUES
            ]
        if number == StructValue.STRUCT_VALUE and wire == LEN:
            out: dict[str, Any] = {}
            for n, _w, ea, eb in spans(data, x, y):
                if n == StructValue.STRUCT_FIELDS:
                    key, value = map_entry(data, ea, eb, depth + 1)
                    out[key] = value
            return out
    return None


def map_entry(data: bytes, a: int, b: int, depth: int = 0) -> tuple[str, Any]:
    key = ""
    value: Any = None
    for number, _wire, x, y in spans(data, a, b):
        if number == StructValue.ENTRY_KEY:
            key = text(data, x, y)
        elif number == StructValue.ENTRY_VALUE:
            value = _struct_value(data, x, y, depth)
    return key, value
