"""Dataset converters (real datasets, 2D detection files) and the embedded synthetic world."""
