"""Reading what W&B wrote to an offline run file, to check it in tests.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic, version), then LevelDB-style
32 KiB blocks of chunks (crc32, length, type; FULL/FIRST/MIDDLE/LAST) holding protobuf
``Record`` messages. gan_zoo itself never reads it; the tests do, to see what reached W&B.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

STEP_KEY = "trainer/global_step"  # the step axis Lightning's WandbLogger logs


def records(path: Path) -> Iterator[pb.Record]:
    """The records of an offline ``.wandb`` file, in order."""
    data, block, pos, chunks = path.read_bytes(), 32768, 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        chunks = chunk if kind in (1, 2) else chunks + chunk  # FULL/FIRST start a record
        if kind in (1, 4):  # FULL/LAST end it
            record = pb.Record()
            record.ParseFromString(chunks)
            yield record


def logged_steps(run_file: Path, prefix: str = "") -> list[int]:
    """The ``trainer/global_step`` of every history row with a key starting with ``prefix``."""
    steps = []
    for record in records(run_file):
        if record.HasField("history"):
            items = {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
            if STEP_KEY in items and any(k.startswith(prefix) and k != STEP_KEY for k in items):
                steps.append(int(json.loads(items[STEP_KEY])))
    return steps
