class InputError(Exception):
    """Unusable input (missing file, not a capture, corrupt HAR): one line on stderr, exit 2."""
