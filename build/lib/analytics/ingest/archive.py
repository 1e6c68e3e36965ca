"""Uploads from the dashboard: CSV/Parquet files as they are, or one ZIP archive holding them.

A ZIP arrives from an untrusted browser, so it is opened defensively before the loader ever sees
it: only data files (``.csv``, ``.parquet``) at the top level or inside one single folder are
taken, by their base names; member names that could escape a folder (``..``, absolute paths,
drive letters), archives inside the archive, more than ``MAX_MEMBERS`` members, more than
``MAX_TOTAL_BYTES`` uncompressed, or a compression ratio above ``MAX_RATIO`` (a decompression bomb)
refuse the whole upload with a one-line message. ``ArchiveRefused`` is a ``DatasetRefused`` (exit
status 2), so the dashboard reports it exactly like any other refused dataset. Nothing is ever
written to disk: members are read into memory with a running size check that does not trust the
sizes the archive declares. ``build_zip`` goes the other way, for the Data page's export download.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import PurePosixPath

from analytics.ingest.load import DATA_SUFFIXES, DatasetRefused

ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".zst")
MAX_MEMBERS = 20
MAX_TOTAL_BYTES = 500 * 1024 * 1024
MAX_RATIO = 100
# Folders and files that operating systems add to archives on their own (macOS Finder, Windows).
_SYSTEM_FOLDERS = ("__MACOSX",)
_SYSTEM_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")
_CHUNK = 1024 * 1024
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP can record
# Small members may compress extremely well (a file of empty rows) and cannot hurt anyone.
_RATIO_FLOOR = 1024 * 1024


class ArchiveRefused(DatasetRefused):
    """An uploaded archive (or combination of uploads) that is refused as a whole; exit status 2."""

    def __init__(self, message: str, file: str | None = None):
        super().__init__(message, 2, file)


def is_archive(name: str) -> bool:
    return name.lower().endswith(".zip")


def _is_system_member(parts: tuple[str, ...]) -> bool:
    return parts[0] in _SYSTEM_FOLDERS or parts[-1] in _SYSTEM_FILES or parts[-1].startswith("._")


def _unsafe(name: str) -> bool:
    """A member name that could point outside the folder it is extracted to."""
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return True
    return any(part == ".." for part in name.split("/"))


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:g} MB" if n_bytes >= 2**20 else f"{n_bytes:,} bytes"


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, limit: int, label: str) -> bytes:
    """A member's bytes, refusing as soon as more than ``budget`` bytes come out of it."""
    out = bytearray()
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            out += chunk
            if len(out) > budget:
                raise ArchiveRefused(f"{label}: refused: it unpacks to more than {_size(limit)}", label)
    return bytes(out)


def extract_data_files(
    data: bytes,
    label: str = "upload.zip",
    max_members: int = MAX_MEMBERS,
    max_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
) -> dict[str, bytes]:
    """The data files of a ZIP archive by base name; raises ``ArchiveRefused`` with a one-line reason."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveRefused(f"{label}: cannot be opened as a ZIP archive ({exc})", label) from exc
    members = [i for i in infos if not i.is_dir()]
    if len(members) > max_members:
        raise ArchiveRefused(
            f"{label}: refused: it holds {len(members)} files, more than {max_members}; "
            "put only the data files (sessions.csv, diary.csv, ...) in the archive",
            label,
        )
    for info in infos:
        if _unsafe(info.filename):
            raise ArchiveRefused(f"{label}: refused: the member '{info.filename}' points outside the archive", label)
    declared = sum(i.file_size for i in members)
    if declared > max_bytes:
        raise ArchiveRefused(f"{label}: refused: it unpacks to more than {_size(max_bytes)}", label)
    for info in members:
        if info.file_size > _RATIO_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
            raise ArchiveRefused(
                f"{label}: refused: '{info.filename}' is compressed more than {max_ratio:g}-fold, which real data "
                "files are not (a possible decompression bomb)",
                label,
            )

    chosen: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    for info in members:
        path = PurePosixPath(info.filename)
        if _is_system_member(path.parts):
            continue
        lowered = path.name.lower()
        if lowered.endswith(ARCHIVE_SUFFIXES):
            raise ArchiveRefused(
                f"{label}: refused: it contains another archive ('{info.filename}'); "
                "unpack it and upload the data files",
                label,
            )
        if lowered.endswith(DATA_SUFFIXES):
            chosen.append((info, path))
    if not chosen:
        raise ArchiveRefused(f"{label}: holds no .csv or .parquet files", label)
    folders = sorted({str(path.parent) for _, path in chosen})
    if len(folders) > 1 or any(len(path.parts) > 2 for _, path in chosen):
        raise ArchiveRefused(
            f"{label}: refused: the data files must sit at the top of the archive or in one folder "
            f"(found them in {', '.join(f + '/' if f != '.' else 'the top level' for f in folders)})",
            label,
        )
    files: dict[str, bytes] = {}
    budget = max_bytes
    for info, path in chosen:
        if info.flag_bits & 0x1:
            raise ArchiveRefused(f"{label}: refused: '{info.filename}' is encrypted; upload it unencrypted", label)
        if path.name in files:
            raise ArchiveRefused(f"{label}: refused: '{path.name}' appears more than once", label)
        try:
            content = _read_member(archive, info, budget, max_bytes, label)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise ArchiveRefused(f"{label}: '{info.filename}' cannot be unpacked ({exc})", label) from exc
        budget -= len(content)
        files[path.name] = content
    return files


def files_from_upload(uploads: Mapping[str, bytes]) -> dict[str, bytes]:
    """The data files of an upload: the CSV/Parquet files themselves, or the contents of ONE ZIP.

    Raises ``ArchiveRefused`` for a mix of a ZIP and other files, for two ZIPs, for files that are
    neither data files nor a ZIP, and for anything ``extract_data_files`` refuses.
    """
    archives = [name for name in uploads if is_archive(name)]
    if archives:
        if len(uploads) > 1:
            raise ArchiveRefused(
                "upload either the data files (CSV or Parquet) or ONE ZIP holding them, not "
                + ", ".join(sorted(uploads))
                + "; remove the others",
            )
        return extract_data_files(uploads[archives[0]], PurePosixPath(archives[0]).name)
    others = sorted(name for name in uploads if not name.lower().endswith(DATA_SUFFIXES))
    if others:
        raise ArchiveRefused(f"{others[0]}: not a CSV, Parquet or ZIP file", others[0])
    return {PurePosixPath(name).name: data for name, data in uploads.items()}


def build_zip(files: Mapping[str, bytes]) -> bytes:
    """One ZIP holding the given files at its top level, in the given order.

    Every member carries the same fixed timestamp, so the same files always give the same bytes
    (the export ZIP of the Data page can be compared and checksummed like the files it holds).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
