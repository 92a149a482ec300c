"""One module per group of CLI commands; ``tfspec.cli`` registers them."""
