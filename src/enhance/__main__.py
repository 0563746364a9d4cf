"""``python -m enhance`` and the ``enhance`` script: the command line (`enhance.cli.main`).

The command line's own imports (astropy, about 0.4 s) happen here, inside the handler of Ctrl-C, so that
an interrupt while they load ends with one line and the exit status of a failure, as it does later.
"""

import sys


def main(argv=None) -> int:
    """Run ``enhance`` with ``argv`` (default ``sys.argv[1:]``); see `enhance.cli.main`.

    Parameters
    ----------
    argv : list of str, optional
        The command-line arguments after ``enhance``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 for a runtime failure or an interrupt, 2 for a usage error.

    Examples
    --------
    >>> main(["run", "no-such-file.fits", "-o", "out.fits"])  # one line on stderr: the input is not found
    1
    """
    try:
        from .cli import main as run

        return run(argv)
    except KeyboardInterrupt:  # while the command line loads, before its own handler is in place
        sys.stderr.write("enhance: error: interrupted\n")
        return 1  # enhance.cli.FAILURE, not loaded yet


if __name__ == "__main__":
    sys.exit(main())
