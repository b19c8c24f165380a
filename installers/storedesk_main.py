"""Entry point of the frozen app (PyInstaller runs this file as ``__main__``)."""

import multiprocessing
import sys

from desktop.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not re-run the app
    sys.exit(main())
