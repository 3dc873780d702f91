"""Read an uploaded CSV or Parquet file into a DataFrame."""

import io

import pandas as pd


def read_table(data: bytes, filename: str | None) -> pd.DataFrame:
    """Parquet by magic bytes or extension, CSV otherwise; ValueError when neither parses."""
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
