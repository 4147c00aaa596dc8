"""The one exception type users see."""

from hydra.errors import CompactHydraException


class QsteError(CompactHydraException):
    """A user-facing error whose message is one line: the offending key and what is allowed.

    Deriving from Hydra's CompactHydraException makes Hydra print just the message (no
    traceback) when it escapes a run.
    """
