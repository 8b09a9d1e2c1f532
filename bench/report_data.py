"""What the report's rows are about, and the words that name it: :class:`Data` (one dataset under one protocol: its
content fingerprint, the embedded synthetic data or not), :class:`Group` (one configuration: a line in every table and
figure), dataset titles, the data sentence and protocol tag of a caption, the smoke-profile note, the settings every
configuration of a dataset shares, and the protocol column of the frames read beside runs.csv.

Every other report module imports this one and it imports none of them; bench/report.py re-exports its public names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench import identity
from bench.datasets import registry as dataset_registry

SMOKE_NOTE = "SMOKE PROFILE: a plumbing check on tiny data and models; these numbers carry no meaning."


@dataclass(frozen=True)
class Group:
    """One configuration of one dataset: a line in every table and figure."""

    dataset: str
    key: str  # settings digest (or a stand-in for rows written before digests)
    model: str
    label: str
    kind: str  # "model", "reference", "external"


@dataclass(frozen=True)
class Data:
    """The data of one (dataset, protocol): its content fingerprint and whether it is the embedded synthetic data."""

    dataset: str
    protocol: str = ""  # "" = rows written before protocol digests
    source: str = ""  # content fingerprint; "" = not recorded
    synthetic: bool | None = None  # None = not recorded

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, **identity.data_description(self.dataset, self.source, self.synthetic)}

    @classmethod
    def from_json(cls, d: Any) -> Data | None:
        if not isinstance(d, dict) or not isinstance(d.get("dataset"), str):
            return None
        synthetic = d.get("synthetic")
        return cls(d["dataset"], str(d.get("protocol") or ""), str(d.get("source") or ""),
                   synthetic if isinstance(synthetic, bool) else None)  # fmt: skip


def _title(ds: str) -> str:
    return dataset_registry.get(ds).title if ds in dataset_registry.names() else ds


def data_words(data: Data | dict[str, Any]) -> str:
    """A few words naming data: "embedded synthetic data", "FaceMask data 1a2b3c4d" (its content fingerprint)."""
    if isinstance(data, dict):
        data = Data.from_json(data) or Data("?")
    if data.synthetic:
        return "embedded synthetic data"
    if data.source:
        return f"{_title(data.dataset)} data {identity.source_id(data.source)}"
    return "data source not recorded"


def _data_note(data: Data) -> str:
    """The data sentence of a caption: the data by dataset and content fingerprint (never a path), and the protocol."""
    if data.synthetic:
        note = "embedded synthetic data (NOT the paper's dataset; not comparable with the paper)"
    elif data.source:
        note = (f"{_title(data.dataset)} images with content fingerprint {identity.source_id(data.source)} (stand-in "
                f"unless this is the paper's dataset; say so when comparing)")  # fmt: skip
    elif data.synthetic is False:
        note = (
            "images from a data folder, content fingerprint not recorded (stand-in unless this is the paper's dataset)"
        )
    else:
        note = "data source not recorded"
    return note + (f"; protocol {data.protocol[:8]}" if data.protocol else "")


def _tag(data: Data) -> str:
    return f" [{data_words(data)}, protocol {data.protocol[:8] or 'not recorded'}]"


def _profile_note(df: pd.DataFrame) -> str:
    return f" {SMOKE_NOTE}" if "smoke" in set(df.profile) else ""


def _variant_items(variant: str) -> list[str]:
    return [v for v in variant.split(", ") if v] if variant and variant != "external" else []


def shared_settings(df: pd.DataFrame, ds: str) -> list[str]:
    """Non-default settings every configuration of ``ds`` shares (e.g. a changed data count): said once, in captions,
    instead of in every row's label."""
    part = df[(df.dataset == ds) & (df.kind != "external")]
    sets = [set(_variant_items(v)) for v in dict.fromkeys(part.variant)]
    return sorted(set.intersection(*sets)) if sets else []


def _with_protocol(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["protocol"] = frame["protocol"].fillna("").astype(str) if "protocol" in frame else ""
    return frame
