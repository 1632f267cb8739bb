"""Command line: argument parsing and printing over library calls (one module per group of subcommands)."""

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
