"""The split cache is keyed on the images' bytes, not on file names, sizes and mtimes: bytes rewritten with size and
mtime kept give a new split; an unchanged folder reuses the cached one. File hashes are memoised per file (in the
process, and on disk with ``images.hash_memo``) and re-read when a file's stat signature moves. The folder identity
that goes into cell digests (``source_fingerprint``) is the same value as before."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench.datasets as datasets
from bench.datasets import build_split, images, open_dataset
from bench.datasets.pools import FolderPool
from tests.conftest import data_config

# 10 training inliers, 5 + 5 classifier images per class, 5 reference images: 25 inliers needed, all of them drawn.
COUNTS = (10, 5, 5, 5)
N_IN, N_OUT = 25, 20


def write_png(path: Path, colour: tuple[int, int, int], seed: int) -> None:
    """An uncompressed PNG (compress_level=0): its size in bytes depends on the image size only, not the pixels."""
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour) + rng.integers(-20, 21, (24, 24, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr, "RGB").save(path, compress_level=0)


def facemask_root(root: Path) -> Path:
    for folder, n, colour in (("without_mask", N_IN, (200, 150, 120)), ("with_mask", N_OUT, (100, 150, 220))):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            write_png(root / folder / f"{i:04d}.png", colour, seed=hash((folder, i)) % 2**32)
    return root


def rewrite_keeping_size_and_mtime(path: Path, colour: tuple[int, int, int]) -> None:
    before = path.stat()
    write_png(path, colour, seed=12345)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def all_images(split) -> set[bytes]:
    return {img.numpy().tobytes() for t in (split.train_images, split.clf_train_images, split.clf_test_inliers,
                                            split.reference_images) for img in t}  # fmt: skip


@pytest.fixture
def fresh_memo(monkeypatch):
    monkeypatch.setattr(images, "_process_memo", {})


@pytest.mark.parametrize("racy_ns", [images.RACY_NS, 0], ids=["fresh-files-not-memoised", "memoised"])
def test_rewritten_bytes_with_size_and_mtime_kept_give_a_new_split(tmp_path, monkeypatch, fresh_memo, racy_ns):
    monkeypatch.setattr(images, "RACY_NS", racy_ns)  # 0: even files written just now are memoised (ctime must catch it)
    root = facemask_root(tmp_path / "fm")
    data = data_config(16, facemask=COUNTS)
    cache = tmp_path / "cache"
    first = build_split("facemask", data, 20, 0, cache, root)
    assert first.n_inliers == 10

    # unchanged folder: the cached split is read back, nothing is assembled
    def no_assembly(*args, **kwargs):
        raise AssertionError("the split was assembled again although the folder did not change")

    with monkeypatch.context() as m:
        m.setattr(datasets, "assemble", no_assembly)
        again = build_split("facemask", data, 20, 0, cache, root)
    assert again.path == first.path and again.split_hash == first.split_hash

    # one inlier rewritten: new bytes, same size and mtime, so the old name/size/mtime key would not have moved
    paths = images.list_images(root / "without_mask")
    cheap = images.fingerprint_files(paths, root)
    target = paths[7]
    rewrite_keeping_size_and_mtime(target, (0, 255, 0))
    assert images.fingerprint_files(paths, root) == cheap
    changed = build_split("facemask", data, 20, 0, cache, root)
    assert changed.path != first.path and changed.split_hash != first.split_hash
    new_pixels = images.decode(target, 16)
    new_img = np.ascontiguousarray(new_pixels.transpose(2, 0, 1)).tobytes()
    assert new_img in all_images(changed) and new_img not in all_images(first)
    assert len(list((cache / "splits").glob("*.npz"))) == 2


def test_source_fingerprint_is_the_same_content_hash_as_before(tmp_path, fresh_memo):
    """The value that goes into cell digests: sha256 over (relative name, NUL, sha256 of the bytes) per file, the
    inlier folder's and the outlier folder's joined by ':'. Computed here independently of the memo."""
    root = facemask_root(tmp_path / "fm")

    def expected(folder: str) -> str:
        h = hashlib.sha256()
        for p in sorted((root / folder).iterdir()):
            h.update(os.fsencode(p.relative_to(root)) + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
        return h.hexdigest()

    ds = open_dataset("facemask", data_config(16, facemask=COUNTS))
    assert ds.source_fingerprint(root) == f"{expected('without_mask')}:{expected('with_mask')}"
    pool = FolderPool(root / "without_mask", root)
    assert pool.fingerprint == pool.content_fingerprint() == expected("without_mask")


def test_corrupted_dataset_views_follow_their_folder(tmp_path, fresh_memo):
    """The corrupted dataset cuts one folder into halves (SubsetPool) and corrupts one (MappedPool): their keys come
    from the folder's content too, and are computed when asked, not when the pools are built."""
    root = tmp_path / "rooms"
    root.mkdir()
    for i in range(50):
        write_png(root / f"{i:04d}.png", (120, 120, 120), seed=i)
    ds = open_dataset("corrupted", data_config(16, corrupted=(10, 5, 5, 5, 25)))
    before = ds.pools(root, 0)
    keys = (before.inliers.fingerprint, before.outliers.fingerprint)
    rewrite_keeping_size_and_mtime(root / "0031.png", (0, 0, 0))
    assert (before.inliers.fingerprint, before.outliers.fingerprint) != keys  # the same pool objects, asked again
    after = ds.pools(root, 0)
    assert after.inliers.fingerprint != keys[0] and after.outliers.fingerprint != keys[1]


def test_file_hashes_are_memoised_on_disk_and_re_read_when_a_file_changes(tmp_path, monkeypatch, fresh_memo):
    monkeypatch.setattr(images, "RACY_NS", 0)
    root = facemask_root(tmp_path / "fm")
    paths = images.list_images(root / "with_mask")
    reads = []
    real = hashlib.file_digest

    def counting(fh, digest):
        reads.append(fh.name)
        return real(fh, digest)

    monkeypatch.setattr(images.hashlib, "file_digest", counting)
    memo_file = tmp_path / "cache" / "file-hashes.json"
    with images.hash_memo(memo_file):
        first = images.content_fingerprint(paths, root)
    assert len(reads) == N_OUT and memo_file.exists()
    stamp = memo_file.stat().st_mtime_ns

    # a new process (empty in-process memo) reads nothing back from the files, and rewrites no memo
    monkeypatch.setattr(images, "_process_memo", {})
    reads.clear()
    with images.hash_memo(memo_file):
        assert images.content_fingerprint(paths, root) == first
    assert reads == [] and memo_file.stat().st_mtime_ns == stamp

    # bytes rewritten with size and mtime kept: that one file is read again, and the fingerprint moves
    monkeypatch.setattr(images, "_process_memo", {})
    rewrite_keeping_size_and_mtime(paths[3], (0, 0, 0))
    with images.hash_memo(memo_file):
        changed = images.content_fingerprint(paths, root)
    assert reads == [str(paths[3])] and changed != first

    # without the on-disk memo the in-process memo still spares the reads
    reads.clear()
    assert images.content_fingerprint(paths, root) == changed and reads == []


def test_a_damaged_memo_is_ignored(tmp_path, fresh_memo):
    root = facemask_root(tmp_path / "fm")
    paths = images.list_images(root / "with_mask")
    memo_file = tmp_path / "file-hashes.json"
    memo_file.write_text("{not json")
    with images.hash_memo(memo_file):
        assert images.content_fingerprint(paths, root) == images.content_fingerprint(paths, root)


def test_recently_changed_files_are_not_memoised(tmp_path, fresh_memo):
    """A file hashed within RACY_NS of its last change may change again without its timestamps moving: it is hashed
    again next time instead of trusted."""
    path = tmp_path / "a.png"
    write_png(path, (1, 2, 3), seed=0)
    images.file_sha256(path)
    assert str(path) not in images._process_memo
