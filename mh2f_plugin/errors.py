"""What can go wrong because of something a user gave us: options, data, weights, disk, flags.

Every such error derives from ``UserError``; the ``basicsr`` command prints it as one line,
``basicsr <verb>: error: <file>: <what is wrong>``, and exits with status 2. Any other exception
is a bug of ours and keeps its traceback. Messages start with the file they are about.
"""


class UserError(Exception):
    """A mistake in what the user gave us, explained in one line that names the file."""


class WeightsError(UserError, ValueError):
    """A weights file that is missing, unreadable, of an unknown format, or of another network."""


class CheckpointError(UserError, OSError):
    """A checkpoint or training state that could not be written completely (disk full, permissions)."""


class NonFiniteLossError(UserError, FloatingPointError):
    """A training loss that is NaN or infinite."""


class OptionsError(UserError, ValueError):
    """An options file or command-line flag that cannot run: a missing key, a wrong type, an unknown name."""


class InvalidOption(UserError, ValueError):
    """An option value that a network, loss, dataset or model refuses (named with its component)."""


class NotARestorerError(UserError, ValueError):
    """A network whose output is not an image of its input's size and channels (a super-resolution
    network, say): deraining, scoring and tiling all need one pixel out for each pixel in."""


class ResourceError(UserError, RuntimeError):
    """Work the machine could not finish: a process killed for memory, or crashed in native code."""


class DatasetError(UserError, ValueError):
    """Data that does not fit its options: pair sizes that differ, an image smaller than the crop."""


WORKER_TRACEBACK = 'Original Traceback (most recent call last):'


def user_message(error):
    """The one-line message of an error the user caused, or None for a bug of ours."""
    if isinstance(error, OSError) and not isinstance(error, UserError) and error.strerror:
        where = error.filename or 'disk'
        return f'{where}: {error.strerror}'
    if not isinstance(error, UserError):
        return None
    text = str(error)
    if WORKER_TRACEBACK in text:  # raised in a DataLoader worker: keep the original message only
        last = [line for line in text.splitlines() if line.strip() and not line.startswith(' ')][-1]
        text = last.split(': ', 1)[1] if ': ' in last else last
    return ' '.join(text.split())
