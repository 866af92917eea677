"""Image-set uploads read safely: archive bombs, traversal and links refused before anything is read, the
bad file named, every image checked like a start image and normalized."""

import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.errors import InvalidImageSet
from core.image_sets import NORMALIZED_SIDE, ImageSetLimits, read_image_set

LIMITS = ImageSetLimits(
    max_images=5, max_bytes=2_000_000, max_image_bytes=500_000, max_image_pixels=1_000_000, min_side=16
)


def png(size: tuple[int, int] = (40, 30), seed: int = 0) -> bytes:
    """Noise in the top-left 40x30 pixels (so pictures differ by seed), flat beyond (so large ones stay small)."""
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    pixels[:30, :40] = np.random.default_rng(seed).integers(0, 256, (30, 40, 3), dtype=np.uint8)[: size[1], : size[0]]
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def tarred(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:  # type: ignore[call-overload]
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return out.getvalue()


def refusal(files: list[tuple[str, bytes]], limits: ImageSetLimits = LIMITS) -> str:
    with pytest.raises(InvalidImageSet) as caught:
        read_image_set(files, limits)
    return str(caught.value)


def test_plain_files_zips_and_tars_make_one_set_in_order() -> None:
    files = [
        ("a.png", png(seed=1)),
        ("b.zip", zipped({"c/d.png": png(seed=2)})),
        ("e.tar.gz", tarred([("f.png", png(seed=3))], "w:gz")),
    ]
    images = read_image_set(files, LIMITS)
    assert [image.name for image in images] == ["a.png", "b.zip:c/d.png", "e.tar.gz:f.png"]
    assert all(Image.open(io.BytesIO(image.png)).format == "PNG" for image in images)


def test_large_images_are_scaled_down_to_the_normalized_short_side() -> None:
    (image,) = read_image_set([("big.png", png((900, 600)))], LIMITS)
    assert (image.width, image.height) == (NORMALIZED_SIDE * 3 // 2, NORMALIZED_SIDE)
    assert Image.open(io.BytesIO(image.png)).size == (384, 256)


def test_a_zip_bomb_is_refused_by_its_declared_size_before_any_member_is_read() -> None:
    bomb = zipped({"ok.png": png(), "huge.png": b"\0" * 3_000_000})  # deflates to a few kB
    assert len(bomb) < 20_000
    message = refusal([("bomb.zip", bomb)], ImageSetLimits(**{**vars(LIMITS), "max_image_bytes": 4_000_000}))
    assert message.startswith("bomb.zip:huge.png: the set holds more than 2000000 bytes uncompressed")


def test_a_member_over_the_image_limit_is_named() -> None:
    assert refusal([("set.zip", zipped({"x.png": b"\0" * 600_000}))]).startswith("set.zip:x.png: 600000 bytes")


def test_too_many_members_are_refused_by_count() -> None:
    members = {f"{n}.png": png(seed=n) for n in range(6)}
    assert "more than 5 images in the set" in refusal([("many.zip", zipped(members))])


def test_a_compressed_tar_bomb_stops_at_the_first_header_over_the_limit() -> None:
    bomb = tarred([("a.png", png()), ("huge.png", b"\0" * 3_000_000)], "w:gz")  # gzip makes it a few kB
    assert len(bomb) < 20_000
    message = refusal([("bomb.tgz", bomb)], ImageSetLimits(**{**vars(LIMITS), "max_image_bytes": 4_000_000}))
    assert message.startswith("bomb.tgz:huge.png: the set holds more than 2000000 bytes")


def _info(name: str, data: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info


@pytest.mark.parametrize("path", ["../escape.png", "a/../../escape.png", "/etc/escape.png", "C:/escape.png"])
def test_paths_outside_the_archive_are_refused(path: str) -> None:
    assert refusal([("t.zip", zipped({path: png()}))]).startswith(f"t.zip:{path}: a path outside")
    assert refusal([("t.tar", tarred([(path, png())]))]).startswith(f"t.tar:{path}: a path outside")


def test_links_are_refused_in_tars_and_zips() -> None:
    link = tarfile.TarInfo("cat.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    assert refusal([("l.tar", tarred([link]))]).startswith("l.tar:cat.png: a link or device")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo("cat.png")
        info.external_attr = 0o120777 << 16  # a symlink, as zip -y stores one
        archive.writestr(info, "/etc/passwd")
    assert refusal([("l.zip", out.getvalue())]).startswith("l.zip:cat.png: a link")


def test_a_bad_picture_inside_an_archive_is_named_with_its_archive() -> None:
    members = {"good.png": png(), "bad.png": png()[:100]}
    assert refusal([("s.zip", zipped(members))]).startswith("s.zip:bad.png: the image is truncated or corrupt")


def test_images_checked_like_start_images_bombs_and_tiny_ones_named() -> None:
    assert "at most 1000000 are accepted" in refusal([("ok.png", png()), ("wide.png", png((2000, 600)))])
    assert refusal([("tiny.png", png((40, 8)))]).startswith("tiny.png: 40x8 pixels; each side needs at least 16")
    assert refusal([("notes.zip", zipped({"readme.txt": b"hi"}))]).startswith("notes.zip:readme.txt: not a picture")


def test_macos_metadata_is_skipped_and_an_empty_upload_refused() -> None:
    images = read_image_set(
        [("m.zip", zipped({"__MACOSX/._a.png": b"junk", "a.png": png(), ".DS_Store": b"x"}))], LIMITS
    )
    assert [image.name for image in images] == ["m.zip:a.png"]
    assert refusal([("empty.zip", zipped({}))]).startswith("no image in the upload")
