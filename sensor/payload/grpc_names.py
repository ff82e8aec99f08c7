"""Field names for gRPC messages from FileDescriptorSets (`grpc.descriptors` in the configuration):
`$['3']['1']` becomes `$.home.street`, which gives stage 2 the keys it reasons with. Made with
`protoc --include_imports --descriptor_set_out=FILE.pb ...` or `buf build -o FILE.pb`."""
from __future__ import annotations

from functools import lru_cache

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError


def load(paths: tuple[str, ...]) -> dict:
    """'/package.Service/Method' -> (request message descriptor, response message descriptor).
    Raises ValueError naming the file that is not a FileDescriptorSet."""
    return _methods(tuple(paths))


@lru_cache(maxsize=8)
def _methods(paths: tuple[str, ...]) -> dict:
    pool = descriptor_pool.DescriptorPool()
    files = []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                files += descriptor_pb2.FileDescriptorSet.FromString(fh.read()).file
        except (OSError, DecodeError) as e:
            raise ValueError(f"{path}: not a readable FileDescriptorSet ({type(e).__name__})") from None
    added, pending = set(), list(files)
    while pending:  # dependencies first, whatever order the sets list them in
        progress = False
        for fd in list(pending):
            if all(dep in added for dep in fd.dependency):
                try:
                    pool.Add(fd)
                except TypeError as e:
                    raise ValueError(f"{fd.name}: {e}") from None
                added.add(fd.name)
                pending.remove(fd)
                progress = True
        if not progress:
            raise ValueError(f"{pending[0].name}: imports a file no descriptor set holds")
    methods = {}
    for fd in files:
        for service in fd.service:
            for method in service.method:
                full = f"{fd.package}.{service.name}" if fd.package else service.name
                methods[f"/{full}/{method.name}"] = (pool.FindMessageTypeByName(method.input_type.lstrip(".")),
                                                     pool.FindMessageTypeByName(method.output_type.lstrip(".")))
    return methods


def named(doc, message) -> dict:
    """The decoded message `doc` ({"1": ..., "3": {...}}) with field numbers replaced by the names
    `message` (a Descriptor) gives them; unknown numbers stay numbers."""
    if not isinstance(doc, dict):
        return doc
    out = {}
    for number, value in doc.items():
        field = message.fields_by_number.get(int(number)) if number.isdigit() else None
        if field is None:
            out[number] = value
            continue
        if field.message_type is not None:
            value = [named(v, field.message_type) for v in value] if isinstance(value, list) else named(value, field.message_type)
        out[field.name] = value
    return out
