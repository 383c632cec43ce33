//! Human output (tables, graph views) for the CLI.
