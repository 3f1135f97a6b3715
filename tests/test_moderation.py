"""Prompt word lists and the NudeNet image classifier."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from openmj.moderation import (
    DEFAULT_WORDS,
    ENV_IMAGE,
    ENV_IMAGE_THRESHOLD,
    ENV_WORDS,
    NUDENET_CLASSES,
    NudeNetModerator,
    PromptModerator,
    PromptVerdict,
    compile_safe_regex,
    image_moderator_from_env,
    is_flagged,
    split_entries,
    to_bgr,
)
from tests.images import drawing as _drawing
from tests.measure import cpu_seconds, lines_executed

DEFAULT = PromptModerator()

# --------------------------------------------------------------------------------------------
# prompt words


@pytest.mark.parametrize(
    ("prompt", "word"),
    [
        ("a nude portrait --ar 2:3", "nude"),
        ("NUDE figure", "nude"),
        ("Naked man in the rain", "naked"),
        ("sex on the beach", "sex"),
        ("pornographic poster", "pornographic"),  # "porn*" matches words starting with porn
        ("porn", "porn"),
        ("a lolicon drawing", "lolicon"),
        ("underage   sex", "underage sex"),
        ("underage-sex", "underage sex"),  # separators inside a phrase do not matter
        ("a decapitated statue", "decapitated"),
        ("xxx", "xxx"),
        ("a cat, hentai style", "hentai"),
    ],
)
def test_default_words_hit(prompt: str, word: str) -> None:
    assert DEFAULT.check(prompt) == PromptVerdict(False, word)


@pytest.mark.parametrize(
    "prompt",
    [
        "a cat on a sofa, golden hour --ar 16:9 --v 7",
        "Essex county farmhouse",  # sex inside a word
        "Sussex coast, sextant, sextet, Middlesex",
        "a nudibranch in a reef",  # nude is not a prefix entry
        "snakedance",  # naked inside a word
        "Al Gore giving a speech",  # "gore" is left out of the defaults on purpose
        "a sunny underpass",
        "",
    ],
)
def test_default_words_miss(prompt: str) -> None:
    assert DEFAULT.check(prompt) == PromptVerdict(True, None)


@pytest.mark.parametrize(
    "prompt",
    [
        "a n.u.d.e woman",
        "n u d e",
        "N-U-D-E",
        "n_u_d_e",
        "NÜDE",  # accents folded
        "ｎｕｄｅ",  # full-width forms
        "nu\u200bde",  # a zero-width space
        "nu\u00adde",  # a soft hyphen
    ],
)
def test_simple_obfuscations_are_seen_through(prompt: str) -> None:
    assert DEFAULT.check(prompt) == PromptVerdict(False, "nude")


def test_leetspeak_is_not_handled_by_the_defaults() -> None:
    # documented limit: digits for letters need a regex entry
    assert DEFAULT.check("a s3x scene").allowed
    custom = PromptModerator(extra=["re:\\bs[e3]x\\b"])
    assert custom.check("a s3x scene") == PromptVerdict(False, "s3x")


def test_every_default_entry_is_banned_by_itself() -> None:
    for entry in DEFAULT_WORDS:
        assert not DEFAULT.check(entry.rstrip("*")).allowed, entry


def test_extra_words_from_env() -> None:
    m = PromptModerator.from_env({ENV_WORDS: " Dragon ,evil clown, 裸体 ,re:\\bd[r]{1,2}ug{1,2}s?\\b,,"})
    assert m.check("a dragon") == PromptVerdict(False, "Dragon")
    assert m.check("an EVIL   clown") == PromptVerdict(False, "evil clown")
    assert m.check("an evil twin and a clown").allowed  # a phrase is words in a row
    assert m.check("一个裸体女人") == PromptVerdict(False, "裸体")  # no spaces in Chinese: substring
    assert m.check("buying DRUGS") == PromptVerdict(False, "drugs")
    assert m.check("dragonfly").allowed
    assert not m.check("nude").allowed  # the defaults stay


def test_words_replace_the_defaults() -> None:
    m = PromptModerator(words=["dragon"])
    assert m.check("nude").allowed
    assert not m.check("dragon").allowed


def test_split_entries_keeps_regex_commas() -> None:
    entries = split_entries("a, b ,re:x{1,3}y,re:[,;]z, re:\\,q ,")
    assert entries == ["a", "b", "re:x{1,3}y", "re:[,;]z", "re:\\,q"]
    m = PromptModerator.from_env({ENV_WORDS: "re:\\bca{1,3}t\\b,dog"})
    assert not m.check("a caaat").allowed
    assert not m.check("dog").allowed


def test_patterns_argument() -> None:
    m = PromptModerator(words=(), patterns=[r"\bblood{1,2}y?\b"])
    assert m.check("BLOODY mess") == PromptVerdict(False, "bloody")
    assert m.check("bloodhound").allowed


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("a+", "unbounded"),
        ("a*b", "unbounded"),
        ("[a-z]{3,}", "unbounded"),
        ("a{0,33}", "unbounded or large"),
        ("(a{0,3}){0,3}", "repeat inside a repeat"),
        ("(?:a|ab){0,3}c", None),  # allowed: bounded and few paths
        (r"(\w)\1", "backreferences"),
        ("(?=x)y", "lookarounds"),
        ("(?<!x)y", "lookarounds"),
        ("(a)?(?(1)b|c)", "conditionals"),
        ("x" * 201, "longer than"),
        ("(ab|cd|ef|gh|ij|kl|mn|op){0,5}", "too many alternatives"),
        ("(unclosed", "invalid regular expression"),
    ],
)
def test_regex_subset(pattern: str, reason: str | None) -> None:
    if reason is None:
        compile_safe_regex(pattern)
        return
    with pytest.raises(ValueError, match=reason):
        compile_safe_regex(pattern)
    with pytest.raises(ValueError, match="moderation entry"):
        PromptModerator(extra=["re:" + pattern])


@pytest.mark.parametrize("entry", ["***", "two words*", "  !  "])
def test_bad_plain_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        PromptModerator(extra=[entry])


@pytest.mark.parametrize(
    "unit",
    [
        "a calm lake at dawn, ",  # an ordinary prompt
        "a.",  # one long run of single letters
        "n.u.d.",  # almost-spelled banned words, over and over
        "underage ",  # the first word of a phrase, over and over
        "a",  # one enormous word
        "裸",  # a script without spaces
    ],
)
def test_check_is_linear(unit: str) -> None:
    m = PromptModerator(extra=["re:\\bn[\\W_]{0,3}u[\\W_]{0,3}d[\\W_]{0,3}e\\b", "re:a{0,32}b", "裸体"])

    def text(length: int) -> str:
        return (unit * (length // len(unit) + 1))[:length]

    assert m.check(text(10_000)).allowed
    # counted work: 10× the text is about 10× the Python lines; a quadratic check would be 100×
    small, large = (lines_executed(lambda t=t: m.check(t)) for t in (text(1_000), text(10_000)))
    assert large <= 20 * small, (small, large)
    # CPU time, for what runs inside C (the regexes): linear 16×, quadratic 256× (tests/measure.py)
    texts = text(1_000), text(16_000)
    t_small, t_large = cpu_seconds([lambda t=t: m.check(t) for t in texts], rounds=5)
    assert t_large < 64 * max(t_small, 50e-6), (t_small, t_large)


# --------------------------------------------------------------------------------------------
# images


def _noise(seed: int, size: tuple[int, int] = (512, 512)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def nudenet() -> NudeNetModerator:
    pytest.importorskip("nudenet")
    return NudeNetModerator()


def test_noise_is_not_flagged(nudenet: NudeNetModerator) -> None:
    images = [_noise(1), _noise(2, (640, 360)), Image.new("RGB", (256, 256), (230, 190, 160))]
    assert nudenet.flagged(images) == [False, False, False]


def test_detector_result_over_threshold_flags(nudenet: NudeNetModerator) -> None:
    drawing = _drawing("buttocks")
    found = nudenet.detections([drawing])[0]
    scores = [d["score"] for d in found if d["class"] == "BUTTOCKS_EXPOSED"]
    assert scores and max(scores) >= 0.6, found
    # one answer per image, in order
    assert nudenet.flagged([_noise(3), drawing, _noise(4)]) == [False, True, False]
    assert NudeNetModerator(threshold=min(1.0, max(scores) + 0.05)).flagged([drawing]) == [False]
    other_classes = NUDENET_CLASSES - {"BUTTOCKS_EXPOSED"}
    assert NudeNetModerator(classes=other_classes).flagged([drawing]) == [False]


def test_only_the_configured_classes_flag(nudenet: NudeNetModerator) -> None:
    belly = _drawing("belly")
    assert any(d["class"] == "BELLY_EXPOSED" for d in nudenet.detections([belly])[0])
    assert nudenet.flagged([belly]) == [False]  # an exposed belly is not nudity
    assert NudeNetModerator(classes=frozenset({"BELLY_EXPOSED"})).flagged([belly]) == [True]


def test_pil_images_are_converted_to_bgr(nudenet: NudeNetModerator) -> None:
    rgb = Image.new("RGB", (4, 2), (10, 20, 30))
    arr = to_bgr(rgb)
    assert arr.shape == (2, 4, 3) and arr.dtype == np.uint8 and arr.flags["C_CONTIGUOUS"]
    assert tuple(arr[0, 0]) == (30, 20, 10)
    transparent = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert tuple(to_bgr(transparent)[0, 0]) == (255, 255, 255)  # shown on white
    assert tuple(to_bgr(Image.new("L", (2, 2), 7))[1, 1]) == (7, 7, 7)
    # an opaque RGBA image reads exactly as its RGB original
    drawing = _drawing("buttocks")
    assert nudenet.detections([drawing.convert("RGBA")]) == nudenet.detections([drawing])


def test_decision_function() -> None:
    hits = [{"class": "FACE_FEMALE", "score": 0.95}, {"class": "ANUS_EXPOSED", "score": 0.61}]
    assert is_flagged(hits, 0.6, NUDENET_CLASSES)
    assert not is_flagged(hits, 0.62, NUDENET_CLASSES)
    assert is_flagged([{"class": "ANUS_EXPOSED", "score": 0.6}], 0.6, NUDENET_CLASSES)  # at = over
    assert not is_flagged([{"class": "FACE_FEMALE", "score": 0.99}], 0.1, NUDENET_CLASSES)
    assert not is_flagged([], 0.1, NUDENET_CLASSES)
    assert is_flagged([{"class": "MALE_GENITALIA_EXPOSED", "score": 0.99}], 0.6, NUDENET_CLASSES)


def test_empty_list_and_bad_threshold() -> None:
    assert NudeNetModerator().flagged([]) == []
    with pytest.raises(ValueError):
        NudeNetModerator(threshold=0)
    with pytest.raises(ValueError):
        NudeNetModerator(threshold=1.5)


def test_image_moderator_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert image_moderator_from_env({}) is None
    assert image_moderator_from_env({ENV_IMAGE: "off"}) is None
    with pytest.raises(ValueError, match="nudenet"):
        image_moderator_from_env({ENV_IMAGE: "clip"})
    pytest.importorskip("nudenet")
    m = image_moderator_from_env({ENV_IMAGE: "NudeNet", ENV_IMAGE_THRESHOLD: "0.75"})
    assert isinstance(m, NudeNetModerator) and m.threshold == 0.75
    with pytest.raises(ValueError, match=ENV_IMAGE_THRESHOLD):
        image_moderator_from_env({ENV_IMAGE: "nudenet", ENV_IMAGE_THRESHOLD: "high"})
    # as if the optional extra were not installed
    monkeypatch.setitem(sys.modules, "nudenet", None)
    with pytest.raises(RuntimeError, match=r"openmj\[moderation\]"):
        image_moderator_from_env({ENV_IMAGE: "nudenet"})
