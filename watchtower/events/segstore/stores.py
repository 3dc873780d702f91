"""Where segment files live: a directory or an object store (through pyarrow.fs), or the database itself."""

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Protocol
from uuid import uuid4

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.parquet as pq

from detectors.base import ID

ROW_GROUP_ROWS = 65_536  # small enough that time pruning skips most of a compacted file's row groups
# Segments are read far more often than written (every window of every monitor), so their codec is snappy, as
# Spark's and pyarrow's default: against zstd, 500k events of 20 numeric and 5 categorical features read in 50
# instead of 141 ms of CPU and write in 306 instead of 472 ms, for 12% more bytes (72 against 64 MB); measured
# features are mostly distinct floats, which no codec shrinks much. Below SMALL_ROWS rows a segment is written
# uncompressed: a codec's set-up per column doubled the CPU of writing a flush of a few predictions and saved next
# to nothing. Compaction merges such segments into larger, compressed ones.
SMALL_ROWS = 100
CODEC = "snappy"


def compression(table: pa.Table) -> str:
    """CODEC, or none for a segment too small to gain from it."""
    return CODEC if table.num_rows >= SMALL_ROWS else "none"


DATABASE = "database"


@dataclass(frozen=True)
class Placed:
    """Where a segment went: a path relative to the store's root, or its bytes for the manifest row."""

    n_bytes: int
    path: str | None = None
    data: bytes | None = None


class SegmentStore(Protocol):
    """Puts a segment's Parquet somewhere its manifest row can point to."""

    def put(self, model_id: int, table: pa.Table, day: date) -> Placed:
        """Write the table; it is complete (and on local disk, synced) when this returns."""
        ...


def write_parquet(table: pa.Table, out: IO[bytes] | pa.NativeFile) -> None:
    """A segment's Parquet: snappy (none for a small one, see `compression`), and dictionaries only for text that
    repeats (categories, classes, errors). Ids, times and numbers are mostly distinct: a dictionary there is
    built, found too large and dropped, which cost 40% of the write and made files larger."""
    repeating = [f.name for f in table.schema if pa.types.is_string(f.type) and f.name != ID]
    pq.write_table(table, out, compression=compression(table), row_group_size=ROW_GROUP_ROWS,
                   use_dictionary=repeating)


def text_columns(schema: pa.Schema) -> list[str]:
    """The text columns a window may read as dictionaries: categorical features, classes, errors. Their Parquet is
    dictionary-encoded (write_parquet), and decoding it as such instead of as strings cost a third less CPU; ids are
    distinct, so not them."""
    return [f.name for f in schema if f.name != ID and (pa.types.is_string(f.type) or pa.types.is_dictionary(f.type))]


def encode(table: pa.Table) -> bytes:
    """A table as Parquet bytes (the database store's form)."""
    buffer = io.BytesIO()
    write_parquet(table, buffer)
    return buffer.getvalue()


class InlineStore:
    """A small segment (the event writer's flush of a few predictions) kept in its manifest row as an Arrow IPC
    stream, whatever the bound store: as a Parquet file it cost a file and a directory fsync (an object store, a
    PUT) and 0.5 ms of Parquet set-up per flush, as an IPC stream 20 us; the commit naming it makes it durable all
    the same. Compaction rewrites such rows as Parquet in the bound store (see INLINE_ROWS)."""

    def put(self, model_id: int, table: pa.Table, day: date) -> Placed:
        out = pa.BufferOutputStream()
        with pa.ipc.new_stream(out, table.schema) as stream:
            stream.write_table(table)
        data = out.getvalue().to_pybytes()
        return Placed(len(data), data=data)

    def __repr__(self) -> str:
        return "InlineStore()"


INLINE_ROWS = SMALL_ROWS  # segments of fewer rows go to the InlineStore


def is_parquet(data: bytes) -> bool:
    """Bytes in a manifest row: Parquet (the database store's segments) or an IPC stream (InlineStore's)."""
    return data[:4] == b"PAR1"


def read_inline(data: bytes) -> pa.Table:
    """An InlineStore segment's table."""
    return pa.ipc.open_stream(data).read_all()


class DatabaseStore:
    """Segments kept as bytes in their manifest row: for deployments with neither a shared path nor an object
    store."""

    def put(self, model_id: int, table: pa.Table, day: date) -> Placed:
        data = encode(table)
        return Placed(len(data), data=data)

    def __repr__(self) -> str:
        return "DatabaseStore()"


class FileStore:
    """Parquet files under `root` on a pyarrow filesystem: model_id=<id>/date=<yyyy-mm-dd>/<uuid>.parquet."""

    def __init__(self, filesystem: pafs.FileSystem, root: str) -> None:
        self.filesystem, self.root = filesystem, root.rstrip("/")
        self._local = isinstance(filesystem, pafs.LocalFileSystem)

    @classmethod
    def open(cls, location: str) -> "FileStore":
        """A directory path, or a URL pyarrow knows (s3://bucket/prefix?endpoint_override=...&region=...)."""
        if "://" in location and not location.startswith("file://"):
            filesystem, root = pafs.FileSystem.from_uri(location)
            return cls(filesystem, root)
        return cls(pafs.LocalFileSystem(), os.path.abspath(location.removeprefix("file://")))

    def __repr__(self) -> str:
        return f"FileStore({self.filesystem.type_name}:{self.root})"

    def full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def put(self, model_id: int, table: pa.Table, day: date) -> Placed:
        path = f"model_id={model_id}/date={day.isoformat()}/{uuid4().hex}.parquet"
        target = self.full(path)
        directory = target.rsplit("/", 1)[0]
        if self._local:  # synced before its manifest row commits: an acknowledged batch survives a power cut
            made = _make_dirs(directory)
            with open(target, "wb") as out:
                write_parquet(table, out)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            # The file's name is in its directory only once the directory is synced too; a directory made just
            # now is named in its parent, which then needs the same.
            for synced in (directory, *(os.path.dirname(d) for d in made)):
                _fsync_dir(synced)
            return Placed(size, path=path)
        self.filesystem.create_dir(directory, recursive=True)
        with self.filesystem.open_output_stream(target) as out:  # an object store shows it once the upload ends
            write_parquet(table, out)
        return Placed(self.filesystem.get_file_info(target).size or 0, path=path)

    def dataset(self, paths: Sequence[str], text_as_dictionary: bool = False) -> ds.Dataset:
        """One dataset over the files; its schema unifies theirs (a class or feature added later, null-only
        columns), so a scan fills what an older file lacks with nulls. `text_as_dictionary`: text columns but the
        id are decoded as dictionaries (see text_columns)."""
        files = [self.full(p) for p in paths]
        dataset = ds.dataset(files, format="parquet", filesystem=self.filesystem)
        schema = pa.unify_schemas([f.physical_schema for f in dataset.get_fragments()], promote_options="permissive")
        if text_as_dictionary and (text := text_columns(schema)):
            options = ds.ParquetReadOptions(dictionary_columns=text)
            dataset = ds.dataset(files, format=ds.ParquetFileFormat(read_options=options), filesystem=self.filesystem)
            schema = pa.unify_schemas([f.physical_schema for f in dataset.get_fragments()],
                                      promote_options="permissive")
        return dataset.replace_schema(schema)

    def files(self, older_than: datetime) -> list[str]:
        """Paths (relative to the root) of the files last written before `older_than`."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        found = []
        for info in self.filesystem.get_file_info(selector):
            if info.type == pafs.FileType.File and info.mtime is not None and info.mtime < older_than:
                found.append(info.path[len(self.root) + 1:])
        return found

    def remove(self, paths: Sequence[str]) -> None:
        """Delete files; one already gone (another replica's sweep) is fine."""
        for path in paths:
            try:
                self.filesystem.delete_file(self.full(path))
            except FileNotFoundError:
                pass


def _make_dirs(directory: str) -> list[str]:
    """Make the directory and any missing parents; return those made, outermost first."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    missing.reverse()
    for made in missing:
        os.makedirs(made, exist_ok=True)  # another writer may make it first
    return missing


def _fsync_dir(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def open_store(location: str | None, database_url: str) -> DatabaseStore | FileStore:
    """The store a WATCHTOWER_SEGMENT_STORE value names; unset: beside a SQLite file, else the database."""
    if location == DATABASE:
        return DatabaseStore()
    if location:
        return FileStore.open(location)
    if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        database = database_url.removeprefix("sqlite:///").split("?", 1)[0]
        return FileStore.open(os.path.join(os.path.dirname(os.path.abspath(database)), "watchtower-segments"))
    return DatabaseStore()
