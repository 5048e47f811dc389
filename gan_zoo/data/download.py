"""Download datasets ahead of time: ``python -m gan_zoo.data.download NAME... [--data-dir DIR]``.

Cluster compute nodes often have no internet. Download on a machine that has it, then copy the
folder over (or share it) and train offline:

    python -m gan_zoo.data.download mnist cifar10 --data-dir /shared/datasets
    python train.py data=cifar10 model=sngan paths.data_dir=/shared/datasets

(``GAN_ZOO_DATA_DIR=/shared/datasets`` sets ``paths.data_dir`` too.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gan_zoo.data.fetch import fetch_cifar10, fetch_mnist
from gan_zoo.errors import DataUnavailableError

FETCHERS: dict[str, Callable[[str | Path], Path]] = {"mnist": fetch_mnist, "cifar10": fetch_cifar10}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gan_zoo.data.download NAME... [--data-dir DIR]``; exit status 2 on failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names",
        nargs="+",
        choices=sorted(FETCHERS),
        metavar="NAME",
        help=f"datasets to fetch: {', '.join(sorted(FETCHERS))}",
    )
    parser.add_argument("--data-dir", default="data", help="where to put them (default: data)")
    args = parser.parse_args(argv)
    for name in args.names:
        try:
            where = FETCHERS[name](args.data_dir)
        except DataUnavailableError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"{name}: {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
