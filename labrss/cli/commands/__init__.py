"""One module per `labrss` sub-command.

Each module defines ``register(subparsers) -> None``, which adds its sub-parser and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
`labrss.cli.main` discovers the modules here, so adding a command touches no shared file.
"""
