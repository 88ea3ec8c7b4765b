"""ml_collections configs: one `get_config(arg)` file per family, variants chosen by `arg`."""
