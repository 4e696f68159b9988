"""The protobuf field numbers the TensorBoard decoder reads, named as in the `.proto` files
(tensorflow/core/util/event.proto, framework/summary.proto, tensor.proto, tensor_shape.proto,
tensorboard/plugins/hparams/plugin_data.proto, google/protobuf/struct.proto)."""

from __future__ import annotations

from typing import Final


class Event:
    WALL_TIME: Final = 1  # double
    STEP: Final = 2  # int64
    SUMMARY: Final = 5


class Summary:
    VALUE: Final = 1  # repeated Summary.Value


class Value:
    """Summary.Value."""

    TAG: Final = 1
    SIMPLE_VALUE: Final = 2  # float
    TENSOR: Final = 8
    METADATA: Final = 9


class SummaryMetadata:
    PLUGIN_DATA: Final = 1


class PluginData:
    PLUGIN_NAME: Final = 1
    CONTENT: Final = 2


class TensorProto:
    DTYPE: Final = 1
    TENSOR_SHAPE: Final = 2
    TENSOR_CONTENT: Final = 4
    FLOAT_VAL: Final = 5
    DOUBLE_VAL: Final = 6
    HALF_VAL: Final = 13  # float16 bits in an int32
    #: int_val, int64_val, bool_val, uint32_val, uint64_val
    INTEGER_VALS: Final = (7, 10, 11, 16, 17)


class TensorShapeProto:
    DIM: Final = 2
    DIM_SIZE: Final = 1  # TensorShapeProto.Dim.size


class StructValue:
    """google.protobuf.Value (and its ListValue, Struct and map entry)."""

    NULL_VALUE: Final = 1
    NUMBER_VALUE: Final = 2
    STRING_VALUE: Final = 3
    BOOL_VALUE: Final = 4
    STRUCT_VALUE: Final = 5
    LIST_VALUE: Final = 6
    LIST_VALUES: Final = 1  # ListValue.values
    STRUCT_FIELDS: Final = 1  # Struct.fields, map<string, Value>
    ENTRY_KEY: Final = 1
    ENTRY_VALUE: Final = 2


class HParamsPluginData:
    SESSION_START_INFO: Final = 3
    SESSION_END_INFO: Final = 4
    START_HPARAMS: Final = 1  # SessionStartInfo.hparams
    START_GROUP_NAME: Final = 4  # SessionStartInfo.group_name
    END_STATUS: Final = 1  # SessionEndInfo.status
