"""Message classes of TF Serving's BatchingParameters and MonitoringConfig for the tests.

tensorflow-serving-api 2.21 ships ``model_server_config_pb2`` but neither
``tensorflow_serving/servables/tensorflow/session_bundle_config.proto`` (BatchingParameters) nor
``tensorflow_serving/config/monitoring_config.proto`` (MonitoringConfig). Their descriptors are declared
here field by field (names, numbers, types and packages as in the tensorflow/serving protos) and handed to
protobuf's own descriptor pool and text-format parser, so a misspelt or mistyped field fails the parse.
Only the fields tfspec writes and their neighbours are declared; an unknown field is a parse error.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

__all__ = ["BatchingParameters", "MonitoringConfig"]

_F = descriptor_pb2.FieldDescriptorProto


def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)

    batching = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving", syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    message = batching.message_type.add(name="BatchingParameters")
    wrapped = [(1, "max_batch_size", "Int64Value"), (2, "batch_timeout_micros", "Int64Value"),
               (3, "max_enqueued_batches", "Int64Value"), (4, "num_batch_threads", "Int64Value"),
               (5, "thread_pool_name", "StringValue")]
    for number, name, wrapper in wrapped:
        message.field.add(name=name, number=number, label=_F.LABEL_OPTIONAL, type=_F.TYPE_MESSAGE,
                          type_name=f".google.protobuf.{wrapper}", json_name=name)
    message.field.add(name="allowed_batch_sizes", number=6, label=_F.LABEL_REPEATED, type=_F.TYPE_INT64)
    message.field.add(name="pad_variable_length_inputs", number=7, label=_F.LABEL_OPTIONAL, type=_F.TYPE_BOOL)
    pool.Add(batching)

    monitoring = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto", package="tensorflow.serving", syntax="proto3")
    prometheus = monitoring.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_BOOL)
    prometheus.field.add(name="path", number=2, label=_F.LABEL_OPTIONAL, type=_F.TYPE_STRING)
    config = monitoring.message_type.add(name="MonitoringConfig")
    config.field.add(name="prometheus_config", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_MESSAGE,
                     type_name=".tensorflow.serving.PrometheusConfig")
    pool.Add(monitoring)
    return pool


_POOL = _pool()
BatchingParameters = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))
MonitoringConfig = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))
