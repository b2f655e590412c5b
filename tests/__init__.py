"""netfab tests (a regular package, so that a `tests` package some library installs cannot shadow it)."""
