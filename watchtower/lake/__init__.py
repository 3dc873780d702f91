"""Data beyond one machine: profile serving logs where they already live (Parquet files, tables) with Spark."""
