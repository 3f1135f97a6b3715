"""The table of prompt cases: each cites its spec section (mj-prompt.md) and says why.

Shape follows spec §11: ``expect`` keys are compared with the normal form (``params`` as a whole
dict, numbers numerically, ``error_contains`` as a substring of ``error``, ``variants`` in order).
"""

from __future__ import annotations

IMG = "https://cdn.example.com/a.png"
IMG2 = "https://cdn.example.com/b.jpg"
IMG3 = "https://cdn.example.com/c.webp"
CASES: list[dict] = []


def ok(section: str, why: str, prompt: str, version: str = "7", **expect) -> None:
    CASES.append(
        {
            "section": section,
            "why": why,
            "prompt": prompt,
            "version": version,
            "expect": {"ok": True, **expect},
        }
    )


def err(section: str, why: str, prompt: str, code: str, contains: str, version: str = "7") -> None:
    expect = {"ok": False, "error_code": code, "error_contains": contains}
    CASES.append({"section": section, "why": why, "prompt": prompt, "version": version, "expect": expect})


# §1 anatomy and tokenisation ----------------------------------------------------------------------
ok("1.1", "plain text prompt", "a red fox in snow", text="a red fox in snow", params={}, image_urls=[])
ok("1.3", "emoji-only prompt is valid", "😊", text="😊", params={})
ok("1.3", "whitespace runs collapse, ends trimmed", "  a \t red\n\nfox  ", text="a red fox", params={})
ok("1.3", "quoted words are plain text", 'a sign that says "OPEN" --ar 3:2', text='a sign that says "OPEN"')
ok(
    "1.1",
    "no space before dashes: text (👎 example)",
    "vibrant California poppies--ar 2:3",
    text="vibrant California poppies--ar 2:3",
    params={},
)
ok(
    "1.1",
    "space between dashes: text (👎 example)",
    "vibrant California poppies - - ar 2:3",
    text="vibrant California poppies - - ar 2:3",
    params={},
)
err(
    "1.1",
    "punctuation after a value (👎 example)",
    "vibrant California poppies --ar 2:3,",
    "E_ASPECT",
    "Invalid aspect ratio `2:3,`",
)
err(
    "1.1",
    "text after parameters is stray (👎 example)",
    "vibrant California --ar 2:3 poppies",
    "E_UNRECOGNIZED",
    "Unrecognized parameter(s): `poppies`",
)
err(
    "1.2",
    "en dash is not a prefix (MJ reply `–v, 5`)",
    "a cat —s 1000 –v 5",
    "E_UNRECOGNIZED",
    "Unrecognized parameter(s): `–v`, `5`",
)
ok("1.2", "em dash + letter is --", "a cat —ar 16:9 —s 250", params={"ar": "16:9", "stylize": 250})
ok("1.2", "em dash inside text is text", "red—blue gradient", text="red—blue gradient", params={})
ok("1.2", "bare -- and --5 before parameters are text", "a -- b --5 c", text="a -- b --5 c", params={})
err("1.2", "bare -- in the parameter section is stray", "cat --tile --", "E_UNRECOGNIZED", "`--`")
err(
    "1.2",
    "unknown parameter and its values are stray",
    "cat --width 100 --ar 1:1",
    "E_UNRECOGNIZED",
    "Unrecognized parameter(s): `--width`, `100`",
)
err("1.2", "deprecated --hq is unknown", "cat --hq", "E_UNRECOGNIZED", "`--hq`")
err("1.2", "--h (old height) is unknown", "cat --h 512", "E_UNRECOGNIZED", "`--h`, `512`")
err("1.2", "--personalize is not a parameter", "cat --personalize", "E_UNRECOGNIZED", "`--personalize`")
err("1.2", "--zoom outside the modal is unknown", "cat --zoom 2", "E_UNRECOGNIZED", "`--zoom`, `2`")
err("1.2", "/prefer option names are unknown", "cat --portrait", "E_UNRECOGNIZED", "`--portrait`")
err("1.2", "flag followed by a value: stray", "cat --tile 2", "E_UNRECOGNIZED", "`2`")
err("1.2", "one-valued parameter takes one token only", "cat --s 100 200", "E_UNRECOGNIZED", "`200`")
err("1.2", "niji takes only a number-like token", "cat --niji anime", "E_UNRECOGNIZED", "`anime`")
ok("1.2", "parameter names are case-insensitive", "cat --AR 3:2 --Seed 5", params={"ar": "3:2", "seed": 5})
err("1.2", "value missing at the end", "cat --ar", "E_MISSING_VALUE", "`--ar` requires a value")
err(
    "1.2",
    "value missing before the next parameter",
    "cat --seed --ar 1:1",
    "E_MISSING_VALUE",
    "`--seed` requires a value",
)
err("1.2", "--no needs a value", "cat --no --ar 1:1", "E_MISSING_VALUE", "`--no` requires a value")
err("1.2", "--sref needs a value", "cat --sref", "E_MISSING_VALUE", "`--sref` requires a value")
err("1.2", "alias named as typed", "cat --s", "E_MISSING_VALUE", "`--s` requires a value")
ok("1.2", "--p with no code = default profile", "cat --p", params={"profile": []})
err(
    "10",
    "missing value before a later stray: leftmost stage-3 problem",
    "cat --ar --tile x",
    "E_MISSING_VALUE",
    "`--ar` requires a value",
)
err("10", "stray before a later missing value", "cat --tile x --ar", "E_UNRECOGNIZED", "`x`")
ok(
    "1.4",
    "duplicate via alias: first wins",
    "cat --s 100 --stylize 400",
    params={"stylize": 100},
    warnings=["duplicate_parameter"],
)
err(
    "1.4",
    "every duplicate is still validated",
    "cat --s 100 --s 5000",
    "E_RANGE",
    "`--s` must be between 0 and 1000",
)
ok(
    "1.4",
    "duplicate seed: first wins",
    "cat --seed 1 --seed 2",
    params={"seed": 1},
    warnings=["duplicate_parameter"],
)
ok(
    "1.4",
    "--no lists concatenate",
    "cat --no red --no blue, green",
    params={"no": ["red", "blue", "green"]},
    warnings=[],
)
ok("1.4", "--p lists concatenate", "cat --p abc --p def", params={"profile": ["abc", "def"]})
ok("1.4", "duplicate flag", "cat --tile --tile", params={"tile": True}, warnings=["duplicate_parameter"])
ok(
    "1.4",
    "--raw and --style raw are the same parameter",
    "cat --raw --style raw",
    params={"raw": True},
    warnings=["duplicate_parameter"],
)
ok("1.5", "6000 characters are allowed", "a" * 6000, params={})
err("1.5", "more than 6000 characters", "a" * 6001, "E_LENGTH", "Invalid prompt: prompt too long")
err("10", "an earlier stage beats the length error", "a" * 6001 + " --foo", "E_UNRECOGNIZED", "`--foo`")

# §2 parameters ----------------------------------------------------------------------------------
ok("2/5.1", "--ar reduced by gcd", "cat --ar 1920:1080", params={"ar": "16:9"})
ok("2/5.1", "--aspect alias", "cat --aspect 2:3", params={"ar": "2:3"})
ok("5.1", "8.5x11 written as 85:110 reduces", "cat --ar 85:110", params={"ar": "17:22"})
err("5.1", "decimals refused", "cat --ar 1.39:1", "E_ASPECT", "Invalid aspect ratio `1.39:1`")
err("5.1", "single number refused", "cat --ar 1.5", "E_ASPECT", "Invalid aspect ratio `1.5`")
err("5.1", "zero side refused", "cat --ar 0:1", "E_ASPECT", "Invalid aspect ratio `0:1`")
err("5.1", "spaced ratio is one bad ratio", "cat --ar 16 : 9", "E_ASPECT", "Invalid aspect ratio `16 : 9`")
err("5.1", "x instead of colon", "cat --ar 16x9", "E_ASPECT", "Invalid aspect ratio `16x9`")
ok("5.2", "14:1 is the V7 limit", "cat --ar 14:1", params={"ar": "14:1"})
ok("5.2", "1:14 is the V7 limit", "cat --ar 1:14", params={"ar": "1:14"})
ok("5.2", "28:2 reduces to 14:1", "cat --ar 28:2", params={"ar": "14:1"})
err("5.2", "beyond 14:1", "cat --ar 15:1", "E_ASPECT", "Invalid aspect ratio `15:1`")
err("5.2", "beyond 1:14", "cat --ar 1:15", "E_ASPECT", "Invalid aspect ratio `1:15`")
err("5.2", "V4 is limited to 2:1", "cat --ar 3:1", "E_ASPECT", "Invalid aspect ratio `3:1`", version="4")
err(
    "5.2", "V8.1 HD is limited to 4:1", "cat --hd --ar 5:1", "E_ASPECT", "Invalid aspect ratio", version="8.1"
)
ok("2", "--chaos 0..100", "cat --chaos 100", params={"chaos": 100})
ok("2", "--c alias", "cat --c 25", params={"chaos": 25})
err("2", "--chaos above 100", "cat --chaos 101", "E_RANGE", "`--chaos` must be between 0 and 100")
err("2", "--c negative", "cat --c -1", "E_RANGE", "`--c` must be between 0 and 100")
err("2", "--chaos must be an integer", "cat --chaos 5.5", "E_TYPE", "`--chaos` expects an integer")
ok("2", "--stylize 1000", "cat --stylize 1000", params={"stylize": 1000})
ok("2", "--s 0", "cat --s 0", params={"stylize": 0})
err("2", "--s above 1000", "cat --s 1001", "E_RANGE", "`--s` must be between 0 and 1000")
err("2", "--s not a number", "cat --s high", "E_TYPE", "`--s` expects an integer")
ok("2", "--weird 3000", "cat --weird 3000", params={"weird": 3000})
ok("2", "--w is weird", "cat --w 250", params={"weird": 250})
err("2", "--weird above 3000", "cat --weird 3001", "E_RANGE", "`--weird` must be between 0 and 3000")
ok("2", "V7 --q 2", "cat --q 2", params={"quality": 2})
ok("2", "V7 --quality 4", "cat --quality 4", params={"quality": 4})
ok("2", "V7 --q 1", "cat --q 1", params={"quality": 1})
ok("2", "V7 --q 3 snaps to 4", "cat --q 3", params={"quality": 4}, warnings=["quality_snapped"])
err("2", "V7 --q .5 not allowed", "cat --q .5", "E_ENUM", "`--q` must be one of 1, 2, 4")
ok("2", "V6 --q .5 (leading dot)", "cat --q .5", version="6", params={"quality": 0.5})
err("2", "V6 --q 4 not allowed", "cat --q 4", "E_ENUM", "`--q` must be one of 0.5, 1, 2", version="6")
err("2", "--q must be a number", "cat --q max", "E_TYPE", "`--q` expects a number")
ok("2", "--seed max", "cat --seed 4294967295", params={"seed": 4294967295})
ok("2", "--seed 0", "cat --seed 0", params={"seed": 0})
err("2", "--seed above max", "cat --seed 4294967296", "E_RANGE", "`--seed` must be between 0 and 4294967295")
err("2", "--seed absurdly long", "cat --seed " + "9" * 200, "E_RANGE", "`--seed` must be between")
err("2", "--seed must be an integer", "cat --seed 1.5", "E_TYPE", "`--seed` expects an integer")
ok(
    "2",
    "--no splits on commas, trims, drops empties",
    "cat --no modern clothing, , hats ,",
    params={"no": ["modern clothing", "hats"]},
)
err("2", "--no with only commas", "cat --no , ,", "E_MISSING_VALUE", "`--no` requires a value")
ok("2/8", "--iw with an image prompt", f"{IMG} a cat --iw 2.5", params={"iw": 2.5}, image_urls=[IMG])
ok("2/8", "--iw leading dot", f"{IMG} a cat --iw .5", params={"iw": 0.5})
err("2", "V7 --iw above 3", f"{IMG} a cat --iw 3.5", "E_RANGE", "`--iw` must be between 0 and 3")
err(
    "3",
    "Niji 7 --iw above 2",
    f"{IMG} a cat --iw 2.5",
    "E_RANGE",
    "`--iw` must be between 0 and 2",
    version="niji 7",
)
err(
    "2",
    "V5.2 --iw above 2",
    f"{IMG} a cat --iw 2.5",
    "E_RANGE",
    "`--iw` must be between 0 and 2",
    version="5.2",
)
ok("4", "orphan --iw kept with a warning", "a cat --iw 2", params={"iw": 2}, warnings=["orphan_parameter"])
err("2", "--iw must be a number", f"{IMG} cat --iw x", "E_TYPE", "`--iw` expects a number")
ok("2", "--sref image URL", f"cat --sref {IMG}", params={"sref": [{"ref": IMG, "weight": 1}]})
ok(
    "2",
    "--sref several URLs with weights",
    f"cat --sref {IMG}::2 {IMG2}::1",
    params={"sref": [{"ref": IMG, "weight": 2}, {"ref": IMG2, "weight": 1}]},
)
ok("2", "--sref numeric code", "cat --sref 2847583950", params={"sref": [{"ref": "2847583950", "weight": 1}]})
ok("2", "--sref random", "cat --sref random", params={"sref": [{"ref": "random", "weight": 1}]})
ok("2", "--sref code with weight", "cat --sref 123::0.5", params={"sref": [{"ref": "123", "weight": 0.5}]})
err("2", "--sref word", "cat --sref vaporwave", "E_TYPE", "`--sref` expects")
err(
    "2/8",
    "--sref URL must be an image",
    "cat --sref https://example.com/page",
    "E_LINK",
    "Invalid link: `https://example.com/page` is not a direct link",
)
ok(
    "2",
    "--sw with --sref",
    "cat --sref 12 --sw 500",
    params={"sref": [{"ref": "12", "weight": 1}], "sw": 500},
)
err("2", "--sw above 1000", "cat --sref 12 --sw 1001", "E_RANGE", "`--sw` must be between 0 and 1000")
ok("4", "orphan --sw kept with warning", "cat --sw 200", params={"sw": 200}, warnings=["orphan_parameter"])
ok(
    "2",
    "V7 --sv 6 with a code",
    "cat --sref 12 --sv 6",
    params={"sref": [{"ref": "12", "weight": 1}], "sv": 6},
)
err("2", "V7 --sv above 6", "cat --sref 12 --sv 7", "E_RANGE", "`--sv` must be between 1 and 6")
err(
    "2",
    "V6 --sv above 4",
    f"cat --sref {IMG} --sv 5",
    "E_RANGE",
    "`--sv` must be between 1 and 4",
    version="6",
)
err(
    "3",
    "Niji 7 --sv is 4 or 6",
    f"cat --sref {IMG} --sv 5",
    "E_ENUM",
    "`--sv` must be one of 4, 6",
    version="niji 7",
)
ok("4", "orphan --sv kept with warning", "cat --sv 4", params={"sv": 4}, warnings=["orphan_parameter"])
ok("2", "--oref one image", f"cat --oref {IMG} --ow 250", params={"oref": IMG, "ow": 250})
err("2", "--ow below 1", f"cat --oref {IMG} --ow 0", "E_RANGE", "`--ow` must be between 1 and 1000")
err("2", "--ow above 1000", f"cat --oref {IMG} --ow 1001", "E_RANGE", "`--ow` must be between 1 and 1000")
ok("4", "orphan --ow is stripped", "cat --ow 300", params={}, warnings=["orphan_parameter_dropped"])
err("2", "--oref must be a URL", "cat --oref person", "E_TYPE", "`--oref` expects an image URL")
ok(
    "2",
    "V6 --cref list",
    f"cat --cref {IMG} {IMG2} --cw 0",
    version="6",
    params={"cref": [IMG, IMG2], "cw": 0},
)
ok("2", "Niji 6 --cref", f"cat --cref {IMG}", version="niji 6", params={"cref": [IMG]})
err(
    "2",
    "--cw above 100",
    f"cat --cref {IMG} --cw 101",
    "E_RANGE",
    "`--cw` must be between 0 and 100",
    version="6.1",
)
ok(
    "4",
    "orphan --cw stripped (V6)",
    "cat --cw 50",
    version="6",
    params={},
    warnings=["orphan_parameter_dropped"],
)
ok(
    "4",
    "orphan --cw stripped before the V7 check",
    "cat --cw 50",
    params={},
    warnings=["orphan_parameter_dropped"],
)
ok("2", "--profile codes", "cat --profile q9qrcqo m7123", params={"profile": ["q9qrcqo", "m7123"]})
err("2", "--p code syntax", "cat --p a.b", "E_TYPE", "`--p` expects")
ok("2", "--tile flag", "cat --tile", params={"tile": True})
ok("2", "--raw flag", "cat --raw", params={"raw": True})
ok("2", "--style raw is raw", "cat --style raw", params={"raw": True})
ok("2", "--style RAW (value case-insensitive)", "cat --style RAW", params={"raw": True})
err(
    "2",
    "--style cute on V7",
    "cat --style cute",
    "E_VERSION",
    "`--style cute` is not compatible with `--version 7`",
)
err(
    "2",
    "--style 4a on V6.1",
    "cat --style 4a",
    "E_VERSION",
    "`--style 4a` is not compatible with `--version 6.1`",
    version="6.1",
)
ok("2", "--style cute on Niji 5", "cat --style cute", version="niji 5", params={"style": "cute"})
ok("2", "--style 4b on V4", "cat --style 4b", version="4", params={"style": "4b"})
err("2", "--style requires a value", "cat --style", "E_MISSING_VALUE", "`--style` requires a value")
ok("2", "--stop on V6", "cat --stop 50", version="6", params={"stop": 50})
err("2", "--stop below 10", "cat --stop 5", "E_RANGE", "`--stop` must be between 10 and 100", version="6.1")
err(
    "2/3",
    "--stop is V6 and earlier",
    "cat --stop 50",
    "E_VERSION",
    "`--stop` is not compatible with `--version 7`",
)
ok("2", "--repeat 4", "cat --repeat 4", params={"repeat": 4}, job_count=4)
ok("2", "--r alias", "cat --r 2", params={"repeat": 2}, job_count=2)
err("2", "--repeat 1", "cat --repeat 1", "E_RANGE", "`--repeat` must be between 2 and 40")
err("2", "--repeat above Pro cap", "cat --r 41", "E_RANGE", "`--r` must be between 2 and 40")
ok("2", "--exp decimal", "cat --exp 12.5", params={"exp": 12.5})
err("2", "--exp above 100", "cat --exp 101", "E_RANGE", "`--exp` must be between 0 and 100")
ok("2", "--v 6.1", "cat --v 6.1", params={"version": "6.1"}, effective_model="6.1")
ok("2", "--version 7", "cat --version 7", version="6", params={"version": "7"}, effective_model="7")
ok("2", "--v 5.0 → 5", "cat --v 5.0", params={"version": "5"}, effective_model="5")
ok("2", "--v 6.0 → 6", "cat --v 6.0", params={"version": "6"}, effective_model="6")
ok("2", "--v 5.2", "cat --v 5.2", params={"version": "5.2"}, effective_model="5.2")
err("2", "--v 9 unknown", "cat --v 9", "E_ENUM", "`--v` must be one of")
err(
    "2", "--v 4.5 unknown", "cat --v 4.5", "E_ENUM", "`--v` must be one of 1, 2, 3, 4, 5, 5.1, 5.2, 6, 6.1, 7"
)
ok("2", "bare --niji = latest", "cat --niji", params={"niji": "latest"}, effective_model="niji 7")
ok(
    "2",
    "bare --niji keeps a Niji account default",
    "cat --niji",
    version="niji 6",
    params={"niji": "latest"},
    effective_model="niji 6",
)
ok("2", "--niji 6", "cat --niji 6", params={"niji": "6"}, effective_model="niji 6")
ok("2", "--niji 5", "cat --niji 5", params={"niji": "5"}, effective_model="niji 5")
err("2", "--niji 8 unknown", "cat --niji 8", "E_ENUM", "`--niji` must be one of 4, 5, 6, 7")
ok("2", "--draft on V7", "cat --draft", params={"draft": True})
err(
    "3",
    "--draft on V6.1",
    "cat --draft",
    "E_VERSION",
    "`--draft` is not compatible with `--version 6.1`",
    version="6.1",
)
ok("2", "--fast", "cat --fast", params={"speed": "fast"})
ok("2", "--relax", "cat --relax", params={"speed": "relax"})
ok("2", "--turbo", "cat --turbo", params={"speed": "turbo"})
ok("2", "--stealth", "cat --stealth", params={"visibility": "stealth"})
ok("2", "--public", "cat --public", params={"visibility": "public"})
ok("2/14", "--video with a start image", f"{IMG} --video", params={"video": True}, text="", image_urls=[IMG])
ok(
    "2/14",
    "video parameters",
    f"{IMG} waves --video --motion high --loop --bs 2",
    params={"video": True, "motion": "high", "loop": True, "bs": 2},
)
ok("2/14", "--end frame", f"{IMG} dusk --video --end {IMG2}", params={"video": True, "end": IMG2})
err("2", "--motion enum", f"{IMG} --video --motion fast", "E_ENUM", "`--motion` must be one of low, high")
err("2", "--bs enum", f"{IMG} --video --bs 3", "E_ENUM", "`--bs` must be one of 1, 2, 4")
err("2", "--hd on V7", "cat --hd", "E_VERSION", "`--hd` is not compatible with `--version 7`")
ok("2", "--hd on V8.1", "cat --hd", version="8.1", params={"hd": True})
err("2", "legacy --test on V7", "cat --test", "E_VERSION", "`--test` is not compatible with `--version 7`")
err(
    "2",
    "legacy --upbeta on V6",
    "cat --upbeta",
    "E_VERSION",
    "`--upbeta` is not compatible with `--version 6`",
    version="6",
)
ok("2", "legacy --sameseed on V3", "cat --sameseed", version="3", params={"sameseed": True})

# §3 version matrix ------------------------------------------------------------------------------
err(
    "3",
    "--cref on V7 (observed MJ reply)",
    f"cat --cref {IMG}",
    "E_VERSION",
    "`--cref` is not compatible with `--version 7`",
)
err(
    "3",
    "--cref on Niji 7",
    f"cat --cref {IMG}",
    "E_VERSION",
    "`--cref` is not compatible with `--niji 7`",
    version="niji 7",
)
err(
    "3",
    "--oref on V6.1",
    f"cat --oref {IMG}",
    "E_VERSION",
    "`--oref` is not compatible with `--version 6.1`",
    version="6.1",
)
err(
    "3",
    "--oref on V8.1 (observed MJ reply)",
    f"cat --oref {IMG} --v 8.1",
    "E_VERSION",
    "`--oref` is not compatible with `--version 8.1`",
)
err(
    "3",
    "--oref on Niji 6",
    f"cat --oref {IMG} --niji 6",
    "E_VERSION",
    "`--oref` is not compatible with `--niji 6`",
)
err(
    "3",
    "--exp on V6",
    "cat --exp 10",
    "E_VERSION",
    "`--exp` is not compatible with `--version 6`",
    version="6",
)
ok("3", "--exp accepted on Niji 7", "cat --exp 10", version="niji 7", params={"exp": 10})
err(
    "3",
    "--stop on Niji 7",
    "cat --stop 50",
    "E_VERSION",
    "`--stop` is not compatible with `--niji 7`",
    version="niji 7",
)
ok("3", "--stop on Niji 6", "cat --stop 50", version="niji 6", params={"stop": 50})
err("3", "--q on V8.1", "cat --q 2 --v 8.1", "E_VERSION", "`--q` is not compatible with `--version 8.1`")
err(
    "3",
    "--turbo on V8.1",
    "cat --turbo",
    "E_VERSION",
    "`--turbo` is not compatible with `--version 8.1`",
    version="8.1",
)
ok("3", "Niji 7 quality 2", "cat --q 2", version="niji 7", params={"quality": 2})
ok("3", "tile on Niji 7 accepted", "cat --tile", version="niji 7", params={"tile": True})
ok("3", "raw on Niji 6", "cat --style raw", version="niji 6", params={"raw": True})
err("3", "raw on V5", "cat --raw", "E_VERSION", "`--raw` is not compatible with `--version 5`", version="5")
err("3", "--p on V5.2", "cat --p", "E_VERSION", "`--p` is not compatible with `--version 5.2`", version="5.2")
err(
    "3",
    "--sref on V5.1",
    "cat --sref 12",
    "E_VERSION",
    "`--sref` is not compatible with `--version 5.1`",
    version="5.1",
)
err(
    "3",
    "--weird on V4",
    "cat --weird 10",
    "E_VERSION",
    "`--weird` is not compatible with `--version 4`",
    version="4",
)
err(
    "3",
    "--tile on V4",
    "cat --tile",
    "E_VERSION",
    "`--tile` is not compatible with `--version 4`",
    version="4",
)
ok(
    "3",
    "version from the prompt beats the context",
    "cat --v 6.1 --stop 20",
    params={"version": "6.1", "stop": 20},
    effective_model="6.1",
)
ok(
    "3",
    "--v 7 from a Niji context",
    "cat --v 7 --oref " + IMG,
    version="niji 6",
    params={"version": "7", "oref": IMG},
    effective_model="7",
)
ok("3", "context 5.1", "cat --raw", version="5.1", params={"raw": True}, effective_model="5.1")
err("10", "version stage after value stage", "cat --stop 5", "E_RANGE", "`--stop` must be between 10 and 100")

# §4 cross-parameter rules -----------------------------------------------------------------------
err(
    "4",
    "--oref with two images",
    f"cat --oref {IMG} {IMG2}",
    "E_OREF_COUNT",
    "`--oref` accepts only one image",
)
err(
    "4",
    "--oref + --q 4",
    f"cat --oref {IMG} --q 4",
    "E_INCOMPATIBLE",
    "`--q 4` is not compatible with `--oref`",
)
err(
    "4",
    "--oref + --draft",
    f"cat --oref {IMG} --draft",
    "E_INCOMPATIBLE",
    "`--draft` is not compatible with `--oref`",
)
err(
    "4",
    "--oref + --turbo",
    f"cat --oref {IMG} --turbo",
    "E_INCOMPATIBLE",
    "`--turbo` is not compatible with `--oref`",
)
ok("4", "--oref + --fast allowed", f"cat --oref {IMG} --fast", params={"oref": IMG, "speed": "fast"})
ok("4", "--oref + --q 2 allowed", f"cat --oref {IMG} --q 2", params={"oref": IMG, "quality": 2})
err(
    "4",
    "--sref code with --sv 3",
    "cat --sref 12 --sv 3",
    "E_SREF_SV",
    "style reference codes and `--sref random` are only compatible with `--sv 4` and `--sv 6`",
)
err(
    "4", "--sref random with --sv 5", "cat --sref random --sv 5", "E_SREF_SV", "only compatible with `--sv 4`"
)
ok(
    "4",
    "--sref code with --sv 4",
    "cat --sref 12 --sv 4",
    params={"sref": [{"ref": "12", "weight": 1}], "sv": 4},
)
ok(
    "4",
    "--sref URL with --sv 3 is fine",
    f"cat --sref {IMG} --sv 3",
    params={"sref": [{"ref": IMG, "weight": 1}], "sv": 3},
)
err(
    "4/8",
    "image-only prompt + --stylize",
    f"{IMG} {IMG2} --s 200",
    "E_IMAGE_ONLY",
    "`--stylize` is not compatible with image-only prompts",
)
err(
    "4/8",
    "image-only prompt + --w",
    f"{IMG} {IMG2} --w 200",
    "E_IMAGE_ONLY",
    "`--weird` is not compatible with image-only prompts",
)
ok("4/8", "image-only prompt + --ar", f"{IMG} {IMG2} --ar 3:2", params={"ar": "3:2"}, text="")
err(
    "4", "--repeat in Relax", "cat --repeat 3 --relax", "E_RELAX", "`--repeat` is not available in Relax mode"
)
err(
    "4/7",
    "permutations in Relax",
    "a {red, blue} cat --relax",
    "E_PERMUTATION",
    "Permutation prompts are not available in Relax mode",
)
err(
    "4",
    "--draft + --tile",
    "cat --draft --tile",
    "E_INCOMPATIBLE",
    "`--tile` is not compatible with `--draft`",
)
err(
    "4",
    "--loop + --end",
    f"{IMG} --video --loop --end {IMG2}",
    "E_INCOMPATIBLE",
    "is not compatible with `--loop`",
)
err("4", "--motion without --video", "cat --motion high", "E_INCOMPATIBLE", "`--motion` requires `--video`")
err("4", "--bs without --video", "cat --bs 2", "E_INCOMPATIBLE", "`--bs` requires `--video`")
err(
    "4/14",
    "--video with an image parameter",
    f"{IMG} --video --ar 16:9",
    "E_INCOMPATIBLE",
    "`--ar` is not compatible with `--video`",
)
err(
    "4/14",
    "--video with --v",
    f"{IMG} --video --v 7",
    "E_INCOMPATIBLE",
    "`--v` is not compatible with `--video`",
)
ok(
    "4/14",
    "--video with raw and speed",
    f"{IMG} --video --raw --fast",
    params={"video": True, "raw": True, "speed": "fast"},
)
err("4", "--v + --niji", "cat --v 6 --niji 6", "E_INCOMPATIBLE", "`--niji` is not compatible with `--v`")
err("4", "two speeds", "cat --fast --turbo", "E_INCOMPATIBLE", "`--turbo` is not compatible with `--fast`")
err(
    "4",
    "--stealth + --public",
    "cat --stealth --public",
    "E_INCOMPATIBLE",
    "`--public` is not compatible with `--stealth`",
)
ok(
    "4",
    "same speed twice is a duplicate",
    "cat --fast --fast",
    params={"speed": "fast"},
    warnings=["duplicate_parameter"],
)
ok(
    "10",
    "seed in turbo warns",
    "cat --seed 5 --turbo",
    params={"seed": 5, "speed": "turbo"},
    warnings=["seed_unreliable_in_turbo"],
)

# §6 multi-prompts -------------------------------------------------------------------------------
ok(
    "6",
    "weights on V6",
    "hot::2 dog",
    version="6",
    segments=[{"text": "hot", "weight": 2}, {"text": "dog", "weight": 1}],
    text="hot::2 dog",
)
ok(
    "6",
    "unweighted parts weigh 1",
    "space:: ship",
    version="6.1",
    segments=[{"text": "space", "weight": 1}, {"text": "ship", "weight": 1}],
)
ok(
    "6",
    "decimal and negative weights",
    "still life painting:: fruit::-.5",
    version="6",
    segments=[{"text": "still life painting", "weight": 1}, {"text": "fruit", "weight": -0.5}],
)
ok(
    "6",
    "trailing :: closes the last part",
    "cat::3 dog::",
    version="niji 6",
    segments=[{"text": "cat", "weight": 3}, {"text": "dog", "weight": 1}],
)
err(
    "6",
    "weights must sum positive",
    "cat::-1 dog::0.5",
    "E_WEIGHT_SUM",
    "the sum of multi-prompt weights must be positive",
    version="6",
)
err(
    "6", "--no counts -0.5 in the sum", "cat::0.5 --no dog", "E_WEIGHT_SUM", "must be positive", version="6.1"
)
ok("6", "plain text has no segments", "a cat --no dog", version="6", segments=None, params={"no": ["dog"]})
ok(
    "6",
    "V7 keeps :: verbatim",
    "hot::2 dog",
    segments=None,
    text="hot::2 dog",
    warnings=["multi_prompt_unsupported"],
)
ok(
    "6",
    "Niji 7 keeps :: verbatim",
    "cat::-5 dog",
    version="niji 7",
    segments=None,
    warnings=["multi_prompt_unsupported"],
)
ok("6", "V7 does no sum check", "cat::-5 dog", segments=None)
ok(
    "6",
    "weights with parameters",
    "hot::1.5 dog --ar 3:2 --v 6",
    segments=[{"text": "hot", "weight": 1.5}, {"text": "dog", "weight": 1}],
    params={"ar": "3:2", "version": "6"},
    effective_model="6",
)

# §7 permutations --------------------------------------------------------------------------------
ok(
    "7",
    "two groups, leftmost slowest",
    "a {red, green} bird in the {jungle, desert}",
    job_count=4,
    variants=[
        {"text": "a red bird in the jungle"},
        {"text": "a red bird in the desert"},
        {"text": "a green bird in the jungle"},
        {"text": "a green bird in the desert"},
    ],
)
ok(
    "7",
    "nested groups in document order",
    "A {sculpture, painting} of a {seagull {on a pier, on a beach}, poodle {on a sofa, in a truck}}.",
    job_count=8,
    variants=[
        {"text": "A sculpture of a seagull on a pier."},
        {"text": "A sculpture of a seagull on a beach."},
        {"text": "A sculpture of a poodle on a sofa."},
        {"text": "A sculpture of a poodle in a truck."},
        {"text": "A painting of a seagull on a pier."},
        {"text": "A painting of a seagull on a beach."},
        {"text": "A painting of a poodle on a sofa."},
        {"text": "A painting of a poodle in a truck."},
    ],
)
ok(
    "7",
    "escaped comma",
    "{red, pastel \\, yellow} bird",
    job_count=2,
    variants=[{"text": "red bird"}, {"text": "pastel, yellow bird"}],
)
ok(
    "7",
    "parameter values",
    "cat --ar {3:2, 1:1}",
    job_count=2,
    variants=[{"params": {"ar": "3:2"}}, {"params": {"ar": "1:1"}}],
)
ok(
    "7",
    "parameter names",
    "cat --{v 5, niji, v 6}",
    job_count=3,
    variants=[
        {"params": {"version": "5"}, "effective_model": "5"},
        {"params": {"niji": "latest"}, "effective_model": "niji 7"},
        {"params": {"version": "6"}, "effective_model": "6"},
    ],
)
ok(
    "7",
    "image prompts",
    f"{{{IMG}, {IMG2}}} a cat",
    job_count=2,
    variants=[{"image_urls": [IMG], "text": "a cat"}, {"image_urls": [IMG2], "text": "a cat"}],
)
ok(
    "7",
    "weights",
    "cat::{1, 2} dog",
    version="6",
    job_count=2,
    variants=[
        {"segments": [{"text": "cat", "weight": 1}, {"text": "dog", "weight": 1}]},
        {"segments": [{"text": "cat", "weight": 2}, {"text": "dog", "weight": 1}]},
    ],
)
ok("7", "single option group still fans out", "a {red} bird", job_count=1, variants=[{"text": "a red bird"}])
ok("7", "empty option", "a {big,} bird", job_count=2, variants=[{"text": "a big bird"}, {"text": "a bird"}])
ok("7", "40 jobs is the cap", "{a,b,c,d,e} {1,2,3,4,5,6,7,8}", job_count=40)
err(
    "7",
    "41+ jobs",
    "{a,b,c,d,e,f} {1,2,3,4,5,6,7}",
    "E_PERMUTATION",
    "Invalid prompt: permutation creates 42 jobs (maximum 40)",
)
err("7", "unclosed brace", "a {red, green bird", "E_PERMUTATION", "Invalid prompt: unbalanced { }")
err("7", "stray closing brace", "a red} bird", "E_PERMUTATION", "Invalid prompt: unbalanced { }")
ok("7", "escaped braces are text", "a \\{literal\\} brace", job_count=1, text="a \\{literal\\} brace")
err("7", "any failing variant fails the prompt", "cat --ar {3:2, 30:1}", "E_ASPECT", "`30:1`")
ok(
    "7",
    "permutation x repeat",
    "a {red, blue} cat --r 2",
    job_count=4,
    variants=[{"text": "a red cat"}, {"text": "a red cat"}, {"text": "a blue cat"}, {"text": "a blue cat"}],
)
err(
    "7",
    "permutation x repeat above the cap",
    "a {red, blue, green} cat --r 20",
    "E_PERMUTATION",
    "permutation creates 60 jobs (maximum 40)",
)
err("10", "permutation errors come first", "a {red cat --foo", "E_PERMUTATION", "unbalanced")

# §8 image prompts -------------------------------------------------------------------------------
ok("8", "one image + text", f"{IMG} a cat in a hat", image_urls=[IMG], text="a cat in a hat")
ok("8", "two images, no text (blend)", f"{IMG} {IMG2}", image_urls=[IMG, IMG2], text="")
ok("8", "three images + text", f"{IMG} {IMG2} {IMG3} mix them", image_urls=[IMG, IMG2, IMG3])
err(
    "8/9",
    "one image, no text",
    IMG,
    "E_SINGLE_IMAGE",
    "Invalid prompt: a single image prompt needs a text prompt (or use two or more image prompts)",
)
err("8/9", "one image + parameters, no text", f"{IMG} --ar 3:2", "E_SINGLE_IMAGE", "single image prompt")
ok(
    "8",
    "extension check ignores the query",
    "https://cdn.discordapp.com/a/b/img.PNG?ex=66&is=1 cat",
    image_urls=["https://cdn.discordapp.com/a/b/img.PNG?ex=66&is=1"],
)
ok(
    "8",
    "jpeg and gif",
    "https://x.org/a.jpeg https://x.org/b.gif",
    image_urls=["https://x.org/a.jpeg", "https://x.org/b.gif"],
)
ok("8", "MJ short links accepted", "https://s.mj.run/AbC123 a cat", image_urls=["https://s.mj.run/AbC123"])
err(
    "8",
    "non-image leading link",
    "https://example.com/page a cat",
    "E_LINK",
    "Invalid link: `https://example.com/page` is not a direct link to a .png, .gif, .webp, .jpg "
    "or .jpeg image",
)
err("8", "extension in the query only", "https://example.com/img?f=a.png a cat", "E_LINK", "Invalid link")
ok("8", "URL after text is text", f"a cat {IMG}", image_urls=[], text=f"a cat {IMG}")
err("10", "link error before stray tokens", "https://example.com/x a cat --foo", "E_LINK", "Invalid link")
err(
    "8",
    "--cref URL must be an image",
    "cat --cref https://example.com/face",
    "E_LINK",
    "Invalid link",
    version="6",
)

# §9 structural rules ----------------------------------------------------------------------------
err("9", "empty prompt", "", "E_EMPTY", "Invalid prompt: the prompt is empty")
err("9", "whitespace only", " \n\t ", "E_EMPTY", "Invalid prompt: the prompt is empty")
err("9", "parameters only", "--ar 16:9 --s 100", "E_EMPTY", "Invalid prompt: the prompt is empty")
err(
    "9",
    "--video without a start image",
    "waves --video",
    "E_VIDEO",
    "Invalid prompt: --video needs a starting image URL",
)
ok(
    "9",
    "one image + --video, no text",
    f"{IMG} --video --motion low",
    params={"video": True, "motion": "low"},
)
err(
    "9",
    "--oref without text",
    f"{IMG} {IMG2} --oref {IMG3}",
    "E_REF_TEXT",
    "Invalid prompt: Omni Reference requires a text prompt",
)
err(
    "9",
    "--sref without text",
    f"{IMG} {IMG2} --sref 12",
    "E_REF_TEXT",
    "Invalid prompt: Style Reference requires a text prompt",
)
err(
    "9",
    "--cref without text",
    f"{IMG} {IMG2} --cref {IMG3}",
    "E_REF_TEXT",
    "Invalid prompt: Character Reference requires a text prompt",
    version="6",
)
err("10", "single image beats reference text", f"{IMG} --sref 12", "E_SINGLE_IMAGE", "single image")

# version contexts and edge forms ----------------------------------------------------------------
ok("11", "effective model default", "cat", effective_model="7", params={}, segments=None, warnings=[])
ok("11", "context Niji 6", "cat", version="niji 6", effective_model="niji 6")
ok("11", "context 5.2", "cat --s 50", version="5.2", effective_model="5.2", params={"stylize": 50})
ok("11", "defaults are never injected", "cat --v 7", params={"version": "7"})
ok(
    "11",
    "kitchen sink",
    "a lighthouse at dusk --ar 21:9 --s 250 --c 10 --w 50 --seed 42 --no fog --q 2 "
    "--raw --exp 5 --p abc --draft --stealth",
    params={
        "ar": "7:3",
        "stylize": 250,
        "chaos": 10,
        "weird": 50,
        "seed": 42,
        "no": ["fog"],
        "quality": 2,
        "raw": True,
        "exp": 5,
        "profile": ["abc"],
        "draft": True,
        "visibility": "stealth",
    },
)
