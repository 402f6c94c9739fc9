"""The one "weights file not in the torch hub cache" reason used by the LPIPS and FID checks."""

from __future__ import annotations

from inpaintzoo.losses.perceptual import hub_checkpoint_path


def missing_hub_file_reason(url: str, needed_by: str, file_description: str) -> str:
    """``""`` when the torch hub cache holds the file of ``url``; otherwise the n/a reason,
    e.g. ``"FID needs the Inception-v3 weights file <path>, which is not in the torch hub cache;
    download <url> on a machine with internet access and copy it there"``. No network access."""
    path = hub_checkpoint_path(url)
    if path.is_file():
        return ""
    return (
        f"{needed_by} needs the {file_description} {path}, which is not in the torch hub "
        f"cache; download {url} on a machine with internet access and copy it there"
    )
