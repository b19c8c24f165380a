"""The StoreDesk Qt application (PySide6 + qasync)."""

__version__ = "0.1.0"
