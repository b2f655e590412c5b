"""Columns as the server hands them from request to model: numpy arrays, or strings as ByteSlices.

    column = ByteSlices(body, starts, lengths)     # value i is body[starts[i]:starts[i] + lengths[i]]
    batch = concatenate([columns_1, columns_2])    # one model call's columns, from several requests
    tensor = column.to_tensor()                    # tf.string, cut out by TensorFlow (one op)
    tensor = column.to_tensor(buffers, views=op)   # pointing into the body (netfab.serve.string_views)

A string column given as slices of a request body never becomes Python strings: TensorFlow's
substr cuts the values out of the body in C++, or, for the model call, the string_views op makes
them point into it. The prediction cache and the odd batch that
mixes both kinds of column see ByteSlices as text (tolist / to_numpy).
"""
import numpy as np


class ByteSlices:
    """UTF-8 strings as (start, length) slices of one bytes buffer (a request body, or several joined)."""
    __slots__ = ("buffer", "starts", "lengths")

    def __init__(self, buffer: bytes, starts: np.ndarray, lengths: np.ndarray):
        self.buffer, self.starts, self.lengths = buffer, starts, lengths

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, rows) -> "ByteSlices":
        """The rows at these indices (numpy indexing), still slices of the same buffer."""
        return ByteSlices(self.buffer, self.starts[rows], self.lengths[rows])

    def tolist(self) -> list[str]:
        buffer = self.buffer
        return [buffer[start:start + length].decode() for start, length in
                zip(self.starts.tolist(), self.lengths.tolist())]

    def to_numpy(self) -> np.ndarray:
        return np.array(self.tolist(), dtype=object)

    def to_tensor(self, buffer_tensors: dict | None = None, views=None):
        """A tf.string tensor of the values; buffer_tensors: id(buffer) -> its tensor, so that the
        columns of one body copy it into TensorFlow once.

        views: the string_views op (netfab.serve.string_views): the values then point into the
        buffer's tensor instead of being copied one by one, valid only while the caller keeps
        buffer_tensors (which it must pass) alive.
        """
        import tensorflow as tf

        cache = {} if buffer_tensors is None else buffer_tensors
        buffer = cache.get(id(self.buffer))
        if buffer is None:
            # A one-element vector, not a scalar: TensorFlow converts a bytes object of a few MB
            # (a batch's joined bodies) many times slower as a scalar than inside a list, and
            # substr broadcasts the one buffer over every slice faster than a scalar too.
            buffer = cache[id(self.buffer)] = tf.constant([self.buffer])
        if views is not None:
            if buffer_tensors is None:
                raise ValueError("string views need the buffer_tensors that keep their buffers alive")
            return views.netfab_string_views(buffer, self.starts, self.lengths)
        return tf.strings.substr(buffer, self.starts, self.lengths)


def concatenate(parts: list[dict]) -> dict:
    """The columns of several requests, one after another (the batcher's merged batch)."""
    if len(parts) == 1:
        return parts[0]
    joined = {}  # ids of the bodies -> (joined body, offset of each), shared by all string columns
    columns = {}
    for name in parts[0]:
        values = [part[name] for part in parts]
        if all(isinstance(value, ByteSlices) for value in values):
            key = tuple(id(value.buffer) for value in values)
            if key not in joined:
                distinct = list({id(value.buffer): value.buffer for value in values}.values())
                offsets = dict(zip(map(id, distinct), np.cumsum([0] + [len(b) for b in distinct[:-1]]).tolist()))
                joined[key] = (b"".join(distinct), offsets)
            buffer, offsets = joined[key]
            columns[name] = ByteSlices(buffer, np.concatenate([v.starts + offsets[id(v.buffer)] for v in values]),
                                       np.concatenate([v.lengths for v in values]))
        else:
            columns[name] = np.concatenate([v.to_numpy() if isinstance(v, ByteSlices) else v for v in values])
    return columns
