"""Errors a user can act on."""


class GoldenError(Exception):
    """A failure explained by where it came from: file, line, field and reason.

    >>> str(GoldenError("must be a sha256 hex digest", file="images/x.yaml", line=4, field="base.sha256"))
    'images/x.yaml:4: base.sha256: must be a sha256 hex digest'
    """

    def __init__(self, reason, *, file=None, line=None, field=None):
        super().__init__(reason)
        self.reason = reason
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field

    def __str__(self):
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        if self.field:
            where += f"{self.field}: "
        return where + self.reason
