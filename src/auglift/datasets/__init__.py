"""Dataset converters and sources: each turns one kind of raw data into the canonical PoseSet."""
