class InputError(Exception):
    """Bad input from the user: the message names the file and the fix.

    The CLI prints it as a single line and exits with code 2 (no traceback unless --debug).
    """
