"""One module per failure signature; each turns an Evidence into Suggestions (pure functions)."""
