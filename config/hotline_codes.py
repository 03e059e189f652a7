"""The 12345 platform's category codes and urgency words, mapped to bihuan's (data in
config/data/hotline_codes.yaml). Validated on load like the rest of the domain data: a code
listed twice or pointing at a category that does not exist stops start-up with the file and
the field."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from config.catalog import URGENCIES, Catalog, ConfigError, Urgency, _load, _unique

FILE_NAME = "hotline_codes.yaml"


class HotlineCode(BaseModel, frozen=True, extra="forbid"):
    code: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$")
    name: str = Field(min_length=1, max_length=100)
    category: str


class _HotlineFile(BaseModel, extra="forbid"):
    urgencies: dict[str, Urgency] = Field(min_length=1)
    codes: list[HotlineCode]


class HotlineCodes(BaseModel, frozen=True):
    codes: dict[str, HotlineCode]
    # The platform's urgency words (一般/紧急/特急 or its numeric codes) and ours.
    urgencies: dict[str, Urgency]

    def category_of(self, code: str) -> str | None:
        """Our category code for the platform's code, or None when it is not mapped."""
        found = self.codes.get(code)
        return found.category if found else None

    def urgency_of(self, word: str) -> Urgency | None:
        if word in URGENCIES:
            return word  # type: ignore[return-value]
        return self.urgencies.get(word)


def load_hotline_codes(directory: str | Path, catalog: Catalog) -> HotlineCodes:
    path = Path(directory) / FILE_NAME
    data = _load(path, _HotlineFile)
    _unique(path, "codes", data.codes, "code", "hotline code")
    for i, code in enumerate(data.codes):
        if code.category not in catalog.categories:
            raise ConfigError(path, f"codes[{i}].category",
                              f"unknown category {code.category!r} (categories are referred to "
                              "by their code in categories.yaml)")
    return HotlineCodes(codes={c.code: c for c in data.codes}, urgencies=data.urgencies)
