"""Errors that bioflow reports to users as one clear paragraph."""


class BioflowError(ValueError):
    """Bad input to bioflow: the message names the file, key or value at fault."""


def choices(names):
    """Format valid names for an error message: ``'a', 'b' or 'c'``."""
    names = [repr(n) for n in sorted(names)]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]
