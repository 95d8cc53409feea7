"""What can go wrong because of something a user gave us: options, data, weights, disk, flags.

Every such error derives from ``UserError``; the ``basicsr`` command prints it as one line,
``basicsr <verb>: error: <file>: <what is wrong>``, and exits with status 2. Any other exception
is a bug of ours and keeps its traceback. Messages start with the file they are about.
"""


class UserError(Exception):
    """A mistake in what the user gave us, explained in one line that names the file."""


class WeightsError(UserError, ValueError):
    """A weights file that is missing, unreadable, of an unknown format, or of another network."""
