"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class ClasswiseError(Exception):
    """Something the user can fix (bad input, missing data, refused file)."""


class DatasetNotFoundError(ClasswiseError):
    def __init__(self, name: str, searched: list, how_to_get: str):
        self.name = name
        self.searched = [str(p) for p in searched]
        paths = ", ".join(self.searched) if self.searched else "(none)"
        super().__init__(
            f"data set '{name}' not found; searched: {paths}. {how_to_get}"
        )


class CorruptDataError(ClasswiseError):
    pass
