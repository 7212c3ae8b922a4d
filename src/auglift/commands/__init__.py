"""One module per ``auglift`` subcommand: ``register(subparsers)`` adds the parser and sets ``func``.

Command modules import the library lazily inside their ``run`` function so that
``auglift --help`` stays fast (no torch import).
"""
