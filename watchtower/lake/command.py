"""`watchtower profile`: profile a model's served rows in a data lake on Spark and post the profile(s).

The model's feature schema comes from the server (`GET /models/{name}`), so each column is profiled with the
kind the detectors test it as. With `--bucket` the rows are profiled per time bucket (aligned to the epoch, in
one Spark aggregation): a window then counts every bucket that lies inside it, and none half.
"""

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from detectors.base import FeatureType
    from detectors.sketches.profile import Profile

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
NO_SPARK = "watchtower profile needs pyspark: pip install 'watchtower[spark]'"
NO_JAVA = ("watchtower profile runs Spark, which needs a Java runtime (17 or later): install one "
           "(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")


class ProfileError(Exception):
    """A problem the command reports in one line and exits 2 on."""


@dataclass(frozen=True)
class Posted:
    """A profile of the rows with start <= ts < end."""

    start: datetime
    end: datetime
    profile: "Profile"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model")
    parser.add_argument("source", nargs="+", help="Parquet files, directories or globs, or one table name")
    parser.add_argument("--ts-column", default="ts", help="the column of served times (default: ts)")
    parser.add_argument("--start", type=moment, help="ISO time: rows served at or after it (default: all)")
    parser.add_argument("--end", type=moment, help="ISO time: rows served before it (default: all)")
    parser.add_argument("--reference", action="store_true", help="store the profile as the model's reference")
    parser.add_argument("--bucket", type=duration, help="one profile per time bucket (30m, 1h, 1d)")
    parser.add_argument("--master", default="local[2]", help="Spark master (default: local[2])")
    parser.add_argument("--url", default=os.environ.get("WATCHTOWER_URL", "http://127.0.0.1:8000"),
                        help="the Watchtower server (default: $WATCHTOWER_URL or http://127.0.0.1:8000)")
    parser.add_argument("--token", default=os.environ.get("WATCHTOWER_TOKEN"),
                        help="API token (default: $WATCHTOWER_TOKEN)")
    parser.add_argument("--out", help="write the profile request bodies to this JSON file instead of posting them")


def moment(text: str) -> datetime:
    """An ISO time; naive means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def duration(text: str) -> timedelta:
    """30s, 15m, 1h, 1d."""
    match = _DURATION.match(text.strip())
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"not a duration like 30m, 1h or 1d: {text!r}")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def run(args: argparse.Namespace) -> int:
    """The command: 0 when every profile was posted (or written), 2 naming the problem otherwise."""
    try:
        bodies = [body(p, args.reference) for p in profile_source(args)]
        if args.out:
            with open(args.out, "w") as out:
                json.dump(bodies, out)
            print(f"wrote {len(bodies)} profile(s) to {args.out}")
            return 0
        for sent in bodies:
            answer = _request("POST", f"{args.url}/models/{args.model}/profiles", args.token, sent)
            print(f"posted profile {answer.get('id')}: {sent['start']} .. {sent['end']}, {answer.get('rows')} rows"
                  + (" (reference)" if args.reference else ""))
    except ProfileError as exc:
        print(f"profile: {exc}", file=sys.stderr)
        return 2
    return 0


def profile_source(args: argparse.Namespace) -> list[Posted]:
    """Check the inputs, read the schema from the server, run the Spark job."""
    if args.reference and args.bucket:
        raise ProfileError("--reference stores one profile: drop --bucket")
    if args.start and args.end and args.start >= args.end:
        raise ProfileError("--start must be before --end")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ProfileError(NO_SPARK) from None
    java_home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (java_home and os.path.exists(os.path.join(java_home, "bin", "java")))):
        raise ProfileError(NO_JAVA)
    model = _request("GET", f"{args.url}/models/{args.model}", args.token)
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers run this interpreter, not whatever python is on PATH
    from pyspark.sql import SparkSession

    from watchtower.lake.spark_profiler import session

    running = SparkSession.getActiveSession()  # called in a process that has one (a notebook, a test): keep it
    spark = session(args.master)
    if running is None:
        spark.sparkContext.setLogLevel("ERROR")
    try:
        frame = _read(spark, args.source, args.ts_column, args.start, args.end)
        return profile_frame_by_time(frame, model_schema(model, frame.columns), args.ts_column, args.start,
                                     args.end, args.bucket)
    finally:
        if running is None:
            spark.stop()


def _read(spark: Any, source: Sequence[str], ts_column: str, start: datetime | None,
          end: datetime | None) -> "DataFrame":
    from pyspark.errors import AnalysisException

    from watchtower.lake.spark_profiler import read_rows

    try:
        frame = read_rows(spark, list(source), None)
    except AnalysisException as exc:
        raise ProfileError(f"cannot read {' '.join(source)}: {str(exc).splitlines()[0]}") from None
    if ts_column not in frame.columns:
        raise ProfileError(f"the source has no column {ts_column!r} (it has: {', '.join(frame.columns)}); "
                           "name the served-time column with --ts-column")
    return read_rows(spark, list(source), ts_column, start, end)


def model_schema(model: dict[str, Any], columns: Sequence[str]) -> "dict[str, FeatureType]":
    """The model's features, plus Watchtower's prediction, label and class-probability columns where the source
    has them (a segment file or a lake table written in Watchtower's layout), of the kinds the server's own
    profiles give them (watchtower/events/segstore/profiles.py profile_schema)."""
    from detectors.base import LABEL, PREDICTION, PROBA_PREFIX

    schema: dict[str, FeatureType] = {f["name"]: f["type"] for f in model["features"]}
    outcome: FeatureType = "categorical" if model.get("task") == "classification" else "numeric"
    schema.update({name: outcome for name in (PREDICTION, LABEL) if name in columns})
    for column in columns:
        if column.startswith(PROBA_PREFIX):
            schema[column] = "numeric"
    return schema


def profile_frame_by_time(frame: "DataFrame", schema: "dict[str, FeatureType]", ts_column: str,
                          start: datetime | None, end: datetime | None,
                          bucket: timedelta | None) -> list[Posted]:
    """One profile of the range, or one per bucket with rows. A profile's range is [start, end) when given,
    else from the first served time to just after the last; a bucket's is the bucket clipped to the range."""
    from pyspark.sql import functions as F

    from watchtower.lake.spark_profiler import profile_groups, profile_rows

    ts = F.col(f"`{ts_column}`")
    if bucket is None:
        if start is None or end is None:
            first, last = frame.agg(F.min(ts), F.max(ts)).collect()[0]
            if first is None:
                raise ProfileError("no rows in the source for that range")
            start = start or _aware(first)
            end = end or _aware(last) + timedelta(microseconds=1)
        return [Posted(start, end, profile_rows(frame, schema))]
    step = int(bucket.total_seconds() * 1_000_000)
    groups = profile_groups(frame, schema, F.floor(F.unix_micros(ts) / step))
    if not groups:
        raise ProfileError("no rows in the source for that range")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    posted = []
    for key in sorted(groups):
        low, high = epoch + timedelta(microseconds=key * step), epoch + timedelta(microseconds=(key + 1) * step)
        posted.append(Posted(max(low, start) if start else low, min(high, end) if end else high, groups[key]))
    return posted


def _aware(value: datetime) -> datetime:
    """Spark hands timestamps back naive, in the session time zone (UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def body(posted: Posted, reference: bool) -> dict[str, Any]:
    """The `POST /models/{name}/profiles` request body."""
    return {"start": posted.start.isoformat(), "end": posted.end.isoformat(),
            "profile": posted.profile.to_json(), "reference": reference, "source": "spark"}


def _request(method: str, url: str, token: str | None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON in and out; a 4xx/5xx answer or no answer is a ProfileError showing what the server said."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, json=payload, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        raise ProfileError(f"{method} {url}: {exc}") from None
    if response.status_code >= 400:
        raise ProfileError(f"{method} {url} -> {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    return answer
