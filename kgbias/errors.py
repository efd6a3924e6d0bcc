"""The project's own exceptions: every bad input ends in one of these, naming what was wrong."""


class KgbiasError(Exception):
    """Base class of every error kgbias raises on purpose."""


class DataError(KgbiasError, ValueError):
    """Malformed or inconsistent input data (names the file, line or field)."""


class ChecksumError(DataError):
    """A file's content does not match the checksum in the registry."""


class RunError(KgbiasError):
    """A run folder that cannot be used: config mismatch, corrupt checkpoint, wrong model."""
