"""Errors that bioflow reports to users as one clear paragraph."""
import errno
import re


class BioflowError(ValueError):
    """Bad input to bioflow: the message names the file, key or value at fault."""


def choices(names):
    """Format valid names for an error message: ``'a', 'b' or 'c'``."""
    names = [repr(n) for n in sorted(names)]
    if not names:
        return "(none)"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def check_choice(value, valid, what, plural=None):
    """``value`` when it is one of ``valid``, else a ``BioflowError``: ``Unknown <what> 'x'; valid
    <plural> are 'a', 'b' or 'c'.``"""
    if value not in valid:
        raise BioflowError(f"Unknown {what} {value!r}; valid {plural or what + 's'} are {choices(valid)}.")
    return value


#: The line gin appends to an exception raised inside a configurable; it names an object address.
_GIN_CALL = re.compile(r"\n\s*In call to configurable '[^'\n]*' \([^\n]*\)(?: in scope '[^'\n]*')?")


def user_message(err):
    """The text of ``err`` for a user: without the ``In call to configurable …`` lines gin adds."""
    return _GIN_CALL.sub("", str(err)).strip()


#: How an OSError reads once gin has re-raised it with only a message.
_ERRNO = re.compile(r"\[Errno (\d+)\] ([^:]+): '(.*)'$", re.S)


def _errno_and_path(err):
    """``(errno, filename)`` of an OSError, read back from its message when gin dropped the attributes."""
    if err.errno is not None:
        return err.errno, err.filename
    match = _ERRNO.match(user_message(err))
    return (int(match.group(1)), match.group(3)) if match else (None, None)


def disk_full_message(err):
    """``'No space left on device: <path>'`` when ``err`` is a full disk (an OSError), else None."""
    if isinstance(err, OSError):
        code, path = _errno_and_path(err)
        if code == errno.ENOSPC:
            return f"No space left on device: {path or 'a file being written'}"
    return None


def os_error_message(err):
    """One sentence for an ``OSError`` at the command line: the reason and the path, and what was kept."""
    full = disk_full_message(err)
    if full is not None:
        return full + ". Free some space and rerun the same command; a training run resumes from its last epoch."
    path, reason = err.filename, err.strerror
    if path is None or reason is None:  # gin re-raises with only a message: "[Errno 30] Reason: 'path'"
        match = _ERRNO.match(user_message(err))
        if match:
            reason, path = match.group(2), match.group(3)
    path = path or "a file"
    reason = reason or user_message(err) or type(err).__name__
    other = f" (and {err.filename2})" if getattr(err, "filename2", None) else ""
    return (f"{reason}: {path}{other}. bioflow writes through temporary files and renames, so nothing was left "
            "half-written, and what was complete before is kept.")
