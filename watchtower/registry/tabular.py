"""Read uploaded files: the spooled upload itself (bounded), and CSV or Parquet into a DataFrame."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from fastapi import UploadFile

from watchtower.errors import Invalid, PayloadTooLarge, field_error

if TYPE_CHECKING:  # read_upload is used at start-up, the rest with pandas once a table arrives
    import pandas as pd


def read_upload(upload: UploadFile, field: str, limit: int) -> bytes:
    """The bytes of one uploaded file (spooled to a temporary file while it arrived), at most `limit` of them.

    Blocking: call it from a sync route, which FastAPI runs in its thread pool, not on the event loop.
    """
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"{field} exceeds {limit} bytes (WATCHTOWER_MAX_UPLOAD_BYTES)",
                              errors=[field_error(field, f"larger than {limit} bytes")])
    if not data:
        raise Invalid(f"{field} is empty", errors=[field_error(field, "empty file")])
    return data


def read_table(data: bytes, filename: str | None) -> pd.DataFrame:
    """Parquet by magic bytes or extension, CSV otherwise; ValueError when neither parses."""
    import pandas as pd

    if not data:
        raise ValueError("the file is empty")
    is_parquet = data[:4] == b"PAR1" or (filename or "").lower().endswith((".parquet", ".pq"))
    try:
        if is_parquet:
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # pandas/pyarrow raise many types for malformed files
        kind = "Parquet" if is_parquet else "CSV"
        raise ValueError(f"not a readable {kind} file: {str(exc)[:200]}") from exc


def to_parquet(frame: pd.DataFrame) -> bytes:
    """Serialise a frame as Parquet bytes."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
