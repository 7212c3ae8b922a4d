"""Dataset converters into the canonical :class:`~auglift.poseset.PoseSet`, and the embedded synthetic world."""
