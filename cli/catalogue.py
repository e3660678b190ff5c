"""(filled in by its issue-11 work package)"""

import argparse


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds no sub-command yet."""
