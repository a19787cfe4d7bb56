"""Storage: tables, engine, repositories (the only place that writes SQL) and migrations."""
