"""The object-store form of weight buckets: numpy out, the same tensors back."""

import numpy as np
import pytest
import torch

from cpe.weight_sync.buckets import from_wire, to_wire

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_round_trip_keeps_names_dtypes_shapes_and_values(dtype):
    bucket = [("a.weight", torch.randn(3, 4).to(dtype)), ("b.bias", torch.arange(5).to(dtype))]
    wire = to_wire(bucket)
    assert all(isinstance(array, np.ndarray) for _, array, _ in wire)
    back = from_wire(wire)
    assert [n for n, _ in back] == ["a.weight", "b.bias"]
    for (_, t), (_, u) in zip(bucket, back, strict=True):
        assert u.dtype == dtype and u.shape == t.shape and torch.equal(u, t)


def test_read_only_buffers_come_back_without_a_copy():
    array = np.arange(6, dtype=np.float32)
    array.flags.writeable = False  # as an object-store buffer arrives
    ((name, tensor),) = from_wire([("w", array, "float32")])
    assert tensor.data_ptr() == array.ctypes.data and tensor.tolist() == [0, 1, 2, 3, 4, 5]
