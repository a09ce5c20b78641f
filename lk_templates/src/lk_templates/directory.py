"""A template source that reads ``NAME.yml`` / ``NAME.yaml`` files from one folder.

A template file may be a symbolic link to another file *in the same folder*
(or below it); a link that leads anywhere else is refused, so a folder a
stranger wrote (a cloned repository's ``.lk/templates``) cannot make
``lk templates show`` print ``/etc/passwd`` or lk's private key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lk_core.errors import TemplateError
from lk_core.model import Template

from lk_templates.names import (
    DEFAULT_DESCRIPTION,
    TEMPLATE_EXTENSIONS,
    describe_template,
    is_template_name,
    validate_template_name,
)

__all__ = ["DirectorySource", "inside_folder"]


def inside_folder(folder: Path, path: Path) -> Path:
    """The real path of template file ``path``, which must stay inside ``folder``.

    ``folder`` itself may be a symbolic link (a dotfiles checkout); ``path``
    may link to another file of the folder. Raises :class:`TemplateError`
    naming the file when it resolves outside the folder.
    """
    real_folder = folder.resolve()
    real = path.resolve()
    if real != real_folder and real_folder not in real.parents:
        raise TemplateError(
            f"template file {path} is a symbolic link that leads outside {folder} (refused)"
        )
    return real


class DirectorySource:
    """A template source reading ``NAME.yml`` / ``NAME.yaml`` files from one folder.

    ``directory`` is a path or a function returning one (or ``None`` when the
    source has no folder), called on every use so that the current directory,
    ``$HOME`` and ``$LK_HOME`` are read when the templates are. A folder that
    does not exist simply has no templates. When both ``NAME.yml`` and
    ``NAME.yaml`` exist, ``NAME.yml`` is used. Files whose stem is not a valid
    template name are ignored. A template's description is its header comment
    (see :func:`~lk_templates.names.describe_template`). A file that is a
    symbolic link leading out of the folder is listed as refused and never
    read (see :func:`inside_folder`).
    """

    def __init__(
        self,
        name: str,
        directory: Path | str | Callable[[], Path | None],
        priority: int,
        default_description: str = DEFAULT_DESCRIPTION,
    ) -> None:
        self.name = name
        self.priority = priority
        self.default_description = default_description
        self._directory = directory

    def __repr__(self) -> str:
        return f"DirectorySource({self.name!r}, {str(self.directory())!r}, {self.priority})"

    def directory(self) -> Path | None:
        """The folder this source reads now (it may not exist)."""
        value = self._directory() if callable(self._directory) else self._directory
        return None if value is None else Path(value)

    def _files(self) -> dict[str, Path]:
        folder = self.directory()
        found: dict[str, Path] = {}
        if folder is None:
            return found
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError:
            return found
        for ext in TEMPLATE_EXTENSIONS:
            for path in entries:
                if not path.name.endswith(ext):
                    continue
                stem = path.name[: -len(ext)]
                if stem in found or not is_template_name(stem):
                    continue
                try:
                    if not path.is_file():
                        continue
                except OSError:
                    continue
                found[stem] = path
        return found

    def list_templates(self) -> list[Template]:
        """Every template in the folder, sorted by name."""
        folder = self.directory()
        result = []
        for stem, path in sorted(self._files().items()):
            try:
                assert folder is not None  # _files() found files in it
                real = inside_folder(folder, path)
                description = describe_template(
                    real.read_text(encoding="utf-8", errors="replace"),
                    self.default_description,
                )
            except TemplateError:
                description = "(refused: a symbolic link that leads outside the folder)"
            except OSError as error:
                description = f"(unreadable: {error.strerror or error})"
            result.append(Template(stem, description, self.name, str(path)))
        return result

    def read_template(self, name: str) -> str | None:
        """The text of template ``name``, or None if the folder has no such file."""
        validate_template_name(name)
        folder = self.directory()
        if folder is None:
            return None
        for ext in TEMPLATE_EXTENSIONS:
            path = folder / f"{name}{ext}"
            try:
                if not path.is_file():
                    continue
                return inside_folder(folder, path).read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                raise TemplateError(f"template file {path} is not UTF-8 text") from None
            except OSError as error:
                raise TemplateError(
                    f"cannot read template file {path}: {error.strerror or error}"
                ) from error
        return None
