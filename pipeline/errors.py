"""The one exception type for a user's data or configuration mistake. The CLI prints its message
as a single line and exits with status 2 (no traceback); anything else is a bug."""


class UserError(Exception):
    """Bad input from the user: the message names the file and the record at fault."""
