"""The segment store: each batch of a model's events is one plain Parquet file in a directory or an object store
(or, for deployments with neither, bytes inside the database); the database holds the manifest (event_segment).

stores.py puts and scans files, binding.py ties a store to an engine, manifest.py writes and reads segments
through the manifest, compaction.py merges small segments and sweeps unreferenced files.
"""
