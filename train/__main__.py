"""Run the training stage: `python -m train CACHE.h5 --head all --out RUNS`."""
import sys

from train.cli import main

if __name__ == "__main__":
    sys.exit(main())
