"""Generated prediction ids: version 4 UUIDs in hex, never repeated, not even by a forked worker."""

import os
import uuid

from watchtower.serving.ids import POOL_BYTES, new_ids


def test_ids_are_distinct_version_4_uuids_across_refills() -> None:
    ids = [i for _ in range(3) for i in new_ids(POOL_BYTES // 16 - 1)] + new_ids(POOL_BYTES // 8)  # a big one too
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    new_ids(1)  # the parent's pool holds 255 more ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write, "".join(new_ids(4)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode()
    os.waitpid(pid, 0)
    assert child and "".join(new_ids(4)) != child
