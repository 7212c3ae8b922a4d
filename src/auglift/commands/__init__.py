"""One module per ``auglift`` subcommand: ``register(subparsers)`` adds the parser and sets ``func``.

Command modules import the library at module top; :mod:`auglift.cli` imports only the module of the
command being run (so ``auglift --help`` stays fast without torch).
"""
