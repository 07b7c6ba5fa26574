#!/usr/bin/env python3
"""g3 ("red team"): an independent generator of labelled candidate sessions for Clarity.

Written without knowledge of Clarity's integrity detectors. See README.md beside this file for
the assumptions about humans and the design of every adversary.

    python3 generate.py --seed 1 --out /tmp/g3-corpus [--per-class 40]

Python 3.11 standard library only; byte-for-byte deterministic for the same arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import sys
import time
from datetime import datetime, timedelta, timezone

GEN = "g3"
HERE = os.path.dirname(os.path.abspath(__file__))
CATALOGUE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "catalogue"))
INF = float("inf")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# =============================================================================================
# Small helpers
# =============================================================================================


def rng_for(*parts) -> random.Random:
    """An independent, reproducible random stream for a tuple of labels."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(h[:16], "big"))


def lognorm(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


def geometric(rng: random.Random, mean: float) -> int:
    """Number of failures before a success, with the given mean."""
    if mean <= 0:
        return 0
    p = 1.0 / (1.0 + mean)
    k = 0
    while rng.random() > p and k < 50:
        k += 1
    return k


_ISO_CACHE = [None, ""]


def iso_ms(ms: int) -> str:
    s, r = divmod(int(ms), 1000)
    if _ISO_CACHE[0] != s:
        _ISO_CACHE[0] = s
        _ISO_CACHE[1] = (EPOCH + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_ISO_CACHE[1]}.{r:03d}Z"


def iso_s(ms: int) -> str:
    return (EPOCH + timedelta(seconds=int(ms) // 1000)).strftime("%Y-%m-%dT%H:%M:%SZ")


def wchoice(rng: random.Random, pairs):
    """Weighted choice from [(value, weight), ...]."""
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


# =============================================================================================
# Keyboard: key classes, geometry (US QWERTY positions), layouts and their modifiers
# =============================================================================================

NAMED_CLASS = {
    "Enter": "enter", "Backspace": "backspace", "Delete": "delete", "Tab": "whitespace",
    "ArrowLeft": "navigation", "ArrowRight": "navigation", "ArrowUp": "navigation",
    "ArrowDown": "navigation", "Home": "navigation", "End": "navigation", "PageUp": "navigation",
    "PageDown": "navigation", "Shift": "modifier", "Control": "modifier", "Alt": "modifier",
    "AltGraph": "modifier", "Meta": "modifier", "CapsLock": "modifier", "Dead": "other",
    "Escape": "other", "F5": "other", "Process": "other",
}


def char_class(c: str) -> str:
    if c == "\n":
        return "enter"
    if c == " " or c == "\t":
        return "whitespace"
    if c.isalpha():
        return "letter"
    if c.isdigit():
        return "digit"
    return "punctuation"


US_SHIFTED = dict(zip('~!@#$%^&*()_+{}|:"<>?', "`1234567890-=[]\\;',./"))
_FINGERS = {
    ("L", 5): "`1qaz", ("L", 4): "2wsx", ("L", 3): "3edc", ("L", 2): "45rtfgvb",
    ("R", 2): "67yuhjnm", ("R", 3): "8ik,", ("R", 4): "9ol.", ("R", 5): "0-=p[]\\;'/",
}
KEYPOS: dict[str, tuple] = {}
for _row, (_keys, _off) in enumerate(
    [("`1234567890-=", 0.0), ("qwertyuiop[]\\", 0.5), ("asdfghjkl;'", 0.75), ("zxcvbnm,./", 1.25)]
):
    for _i, _k in enumerate(_keys):
        _hf = next(hf for hf, ks in _FINGERS.items() if _k in ks)
        KEYPOS[_k] = (_row, _off + _i, _hf[0], _hf[1])
KEYPOS.update({
    " ": (4, 5.5, "T", 1), "Enter": (2, 12.5, "R", 5), "Backspace": (0, 13.5, "R", 5),
    "Tab": (1, -0.5, "L", 5), "Delete": (1, 15.0, "R", 2), "ArrowLeft": (4, 14.5, "R", 2),
    "ArrowRight": (4, 16.5, "R", 2), "ArrowUp": (3.5, 15.5, "R", 3), "ArrowDown": (4, 15.5, "R", 3),
    "Home": (1, 16.0, "R", 2), "End": (2, 16.0, "R", 2), "Shift": (3, -1.0, "L", 5),
    "Control": (4, -1.0, "L", 5), "Meta": (4, 1.0, "L", 1), "Alt": (4, 0.5, "L", 1),
    "AltGraph": (4, 9.5, "R", 1), "Escape": (0, -1.0, "L", 5),
})


def base_key(c: str) -> str:
    """The physical key (US positions) a character is typed with."""
    if c == "\n":
        return "Enter"
    if c == "\t":
        return "Tab"
    lc = c.lower()
    if lc in KEYPOS:
        return lc
    return US_SHIFTED.get(c, c)


# Common English / code bigrams are typed faster (motor chunking of frequent pairs).
BIGRAM_BONUS = {}
for _bg, _f in [
    ("th", .78), ("he", .80), ("in", .80), ("er", .80), ("an", .82), ("re", .83), ("on", .84),
    ("at", .85), ("en", .84), ("nd", .85), ("ti", .87), ("es", .86), ("or", .86), ("te", .87),
    ("of", .88), ("ed", .86), ("is", .87), ("it", .87), ("al", .88), ("ar", .88), ("st", .86),
    ("to", .87), ("nt", .86), ("ng", .87), ("se", .88), ("ha", .88), ("ou", .86), ("le", .88),
    ("ve", .90), ("co", .88), ("me", .90), ("de", .90), ("ri", .90), ("ro", .90), ("ic", .90),
    ("ne", .90), ("ea", .90), ("ra", .90), ("ce", .90), ("li", .90), ("ch", .90), ("ll", .88),
    ("ma", .90), ("si", .90), ("om", .90), ("ur", .90), ("et", .90), ("ut", .90), ("io", .88),
    ("ct", .92), ("un", .90), ("fu", .92), ("nc", .92), ("el", .90), ("lf", .90), ("rr", .90),
    ("ue", .92), ("ke", .92), ("ey", .92), ("id", .92), ("ex", .94), ("rt", .92), ("tu", .92),
]:
    BIGRAM_BONUS[_bg] = _f


def digraph_factor(a: str, b: str) -> float:
    """Relative time of the key-down to key-down interval from key a to key b for a touch typist."""
    pa = KEYPOS.get(a)
    pb = KEYPOS.get(b)
    if pa is None or pb is None:
        return 1.0
    if a == b:
        return 0.93
    ra, xa, ha, fa = pa
    rb, xb, hb, fb = pb
    if ha == "T" or hb == "T":
        f = 0.90
    elif ha != hb:
        f = 0.80
    elif fa == fb:
        f = 1.32 + 0.12 * abs(ra - rb)
    else:
        f = 1.0 + 0.05 * abs(ra - rb)
        if fb < fa:
            f -= 0.07  # inward roll
    if rb == 0:
        f *= 1.12
    if fb == 5 and hb != "T":
        f *= 1.06
    return f * BIGRAM_BONUS.get(a + b, 1.0)


def key_distance(a: str, b: str) -> float:
    pa = KEYPOS.get(a)
    pb = KEYPOS.get(b)
    if pa is None or pb is None:
        return 4.0
    return math.hypot(pa[0] - pb[0], pa[1] - pb[1])


def neighbours(c: str) -> list[str]:
    """Keys next to c on the keyboard (typo targets), in c's case."""
    k = c.lower()
    p = KEYPOS.get(k)
    if p is None or len(k) != 1:
        return []
    out = []
    for kk, pp in KEYPOS.items():
        if len(kk) == 1 and kk != k and kk.isalnum() == k.isalnum() and abs(pp[0] - p[0]) <= 1 \
                and abs(pp[1] - p[1]) <= 1.3 and pp[0] < 4:
            out.append(kk.upper() if c.isupper() else kk)
    return out


class Layout:
    """Which modifiers (and dead keys) a character needs on a keyboard layout."""

    def __init__(self, name: str, os_name: str):
        self.name = name
        self.os = os_name
        if os_name == "windows":
            self.altgr = ("Control", "AltGraph")
        elif os_name == "mac":
            self.altgr = ("Alt",)
        else:
            self.altgr = ("AltGraph",)
        self.shortcut = "Meta" if os_name == "mac" else "Control"
        self.dead = set()
        if name == "us_intl":
            self.dead = set("'\"`~^")
        elif name == "de":
            self.dead = set("^`")
        elif name == "fr":
            self.dead = set("^")
        self._cache: dict[str, tuple] = {}

    def mods(self, c: str) -> tuple:
        r = self._cache.get(c)
        if r is not None:
            return r
        r = self._mods(c)
        self._cache[c] = r
        return r

    def _mods(self, c: str) -> tuple:
        if c.isalpha():
            return ("Shift",) if c.isupper() else ()
        n = self.name
        if n in ("us", "us_intl"):
            return ("Shift",) if c in US_SHIFTED else ()
        if n == "de":
            if c in "@{[]}\\|~":
                return self.altgr
            if c in "!\"$%&/()=?*'>;:_`":
                return ("Shift",)
            return ()
        if n == "fr":
            if c in "~#{[|`\\@]}^":
                return self.altgr if c != "^" else ()
            if c.isdigit() or c in "./?%+>":
                return ("Shift",)
            return ()
        return ()


# =============================================================================================
# The workspace: files, edits (UTF-16 positions) and markers that follow edits
# =============================================================================================


class Marker:
    __slots__ = ("file", "pos", "right")

    def __init__(self, file: str, pos: int, right: bool):
        self.file = file
        self.pos = pos
        self.right = right


class Workspace:
    def __init__(self, files):
        self.files: dict[str, str] = {}
        for path, content in files:
            self.files[path] = content
        self.markers: list[Marker] = []

    def marker(self, file, pos, right=False) -> Marker:
        m = Marker(file, pos, right)
        self.markers.append(m)
        return m

    def drop(self, m: Marker):
        if m in self.markers:
            self.markers.remove(m)

    def edit(self, f: str, pos: int, deleted: int, inserted: str):
        text = self.files[f]
        assert 0 <= pos and deleted >= 0 and pos + deleted <= len(text), (f, pos, deleted, len(text))
        self.files[f] = text[:pos] + inserted + text[pos + deleted:]
        delta = len(inserted) - deleted
        end = pos + deleted
        for m in self.markers:
            if m.file != f:
                continue
            if m.pos > end or (m.pos == end and (deleted > 0 or m.right)):
                m.pos += delta
            elif m.pos > pos:
                m.pos = pos + (len(inserted) if m.right else 0)

    def create(self, f: str, content: str = ""):
        assert f not in self.files
        self.files[f] = content


def line_bounds(text: str, pos: int):
    s = text.rfind("\n", 0, pos) + 1
    e = text.find("\n", pos)
    if e < 0:
        e = len(text)
    return s, e


def leading_ws(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def lang_of(path: str) -> str:
    ext = path.rsplit(".", 1)[-1] if "." in path else ""
    return {"py": "py", "go": "go", "ts": "ts", "js": "ts", "json": "ts", "sql": "sql",
            "md": "md", "yaml": "yaml", "yml": "yaml", "txt": "txt", "mod": "txt"}.get(ext, "txt")


def indent_unit(path: str) -> str:
    lang = lang_of(path)
    return {"go": "\t", "ts": "  ", "yaml": "  ", "md": "  "}.get(lang, "    ")


# =============================================================================================
# Browsers (timer resolution), input devices, the page's recorder (capture semantics)
# =============================================================================================


class Browser:
    def __init__(self, name: str, res: float, os_name: str, frac: float):
        self.name = name
        self.res = res
        self.os = os_name
        self.frac = frac


BROWSERS = [  # name, timer resolution (ms), weight
    ("chrome", 0.1, 58), ("edge", 0.1, 8), ("chrome-isolated", 0.005, 4), ("firefox", 1.0, 12),
    ("safari", 1.0, 7), ("firefox-rfp", 100.0, 4), ("firefox-rfp-legacy", 1000.0 / 60.0, 4),
    ("firefox-legacy", 2.0, 3),
]


def pick_browser(rng: random.Random, name: str | None = None, os_name: str | None = None) -> Browser:
    if name is None:
        name = wchoice(rng, [(b[0], b[2]) for b in BROWSERS])
    res = next(b[1] for b in BROWSERS if b[0] == name)
    if os_name is None:
        if name == "safari":
            os_name = "mac"
        elif name == "edge":
            os_name = wchoice(rng, [("windows", 9), ("mac", 1)])
        elif name.startswith("firefox"):
            os_name = wchoice(rng, [("windows", 5), ("linux", 3), ("mac", 2)])
        else:
            os_name = wchoice(rng, [("windows", 55), ("mac", 30), ("linux", 15)])
    # performance.timeOrigin is coarsened like now(); the capture subtracts floor(timeOrigin).
    if res < 1:
        frac = rng.randrange(int(round(1 / res))) * res
    elif abs(res - 1000.0 / 60.0) < 1e-6:
        frac = (rng.randrange(3) * res) % 1.0
    else:
        frac = 0.0
    return Browser(name, res, os_name, frac)


class Device:
    """Turns a physical key time into the event's timeStamp: a USB keyboard is polled (1-10 ms),
    the OS adds a little jitter. Injected (scripted) input has no polling lattice."""

    def __init__(self, rng: random.Random, kind: str = "usb", poll: float | None = None,
                 jitter: float | None = None):
        self.rng = rng
        self.kind = kind
        if kind == "usb":
            self.poll = poll if poll is not None else wchoice(
                rng, [(8.0, 45), (1.0, 20), (4.0, 10), (2.0, 5), (10.0, 5), (0.0, 15)])
            self.jitter = jitter if jitter is not None else rng.uniform(0.05, 0.8)
        else:
            self.poll = 0.0
            self.jitter = jitter if jitter is not None else 0.05
        self.phase = rng.uniform(0, self.poll) if self.poll else 0.0

    def snap(self, t: float) -> float:
        if self.poll:
            t = math.ceil((t - self.phase) / self.poll) * self.poll + self.phase
        return t + abs(self.rng.gauss(0.0, self.jitter))


class FaceModel:
    def __init__(self, mid, version, gen_mu, gen_sd, imp_mu, imp_sd, q_slope):
        self.id = mid
        self.version = version
        self.gen_mu, self.gen_sd = gen_mu, gen_sd
        self.imp_mu, self.imp_sd = imp_mu, imp_sd
        self.q_slope = q_slope


FACE_MODELS = [
    FaceModel("g3-arcface-r100-int8", "2024.2.1", 0.74, 0.070, 0.13, 0.080, 0.35),
    FaceModel("g3-mobileface-q8", "1.3.0", 0.68, 0.085, 0.31, 0.095, 0.30),
    FaceModel("g3-blazeembed-lite", "0.7.2", 0.81, 0.055, 0.53, 0.085, 0.22),
]
FACE_WEIGHTS = [5, 3, 2]


class FaceWorld:
    """Who (or what) is in front of the camera over the session, and the light."""

    def __init__(self, rng: random.Random, model: FaceModel, horizon_ms: float, bad_light_rate=0.25,
                 passer_rate=0.015, glance_rate=0.05):
        self.rng = rng
        self.m = model
        self.person_offset = rng.gauss(0.0, 0.6 * model.gen_sd)
        self.noise = 0.8 * model.gen_sd
        self.base_q = clamp(rng.gauss(0.82, 0.06), 0.55, 0.97)
        self.segments: list[tuple] = []  # (t0, t1, kind, params) later entries win
        self.passer_rate = passer_rate
        self.glance_rate = glance_rate
        # bad-light episodes: dusk, a lamp switched off, sun behind the candidate
        t = 0.0
        while t < horizon_ms:
            t += rng.expovariate(1.0 / (3.0 * 3600e3))
            if rng.random() < bad_light_rate and t < horizon_ms:
                d = rng.uniform(4, 30) * 60e3
                self.segments.append((t, t + d, "dark", {"q": rng.uniform(0.18, 0.5)}))
                t += d

    def add(self, t0, t1, kind, **params):
        self.segments.append((t0, t1, kind, params))

    def state(self, t):
        kind, params, dark = "genuine", {}, None
        for (a, b, k, p) in self.segments:
            if a <= t < b:
                if k == "dark":
                    dark = p
                else:
                    kind, params = k, p
        return kind, params, dark

    def check(self, t):
        rng, m = self.rng, self.m
        kind, p, dark = self.state(t)
        q = clamp(rng.gauss(self.base_q, 0.04), 0.3, 0.99)
        if dark is not None:
            q = clamp(rng.gauss(dark["q"], 0.06), 0.05, 0.7)
        count = 1
        if kind == "absent":
            return 0, 0.0, round(rng.uniform(0.0, 0.12), 4)
        if kind == "genuine":
            mu = m.gen_mu + self.person_offset
            sim = rng.gauss(mu, self.noise)
            if rng.random() < self.glance_rate:  # looking at a second screen, head turned
                q *= rng.uniform(0.5, 0.8)
                sim -= rng.uniform(0.05, 0.18)
            if rng.random() < self.passer_rate:
                count = 2
                q *= rng.uniform(0.85, 1.0)
        elif kind == "impostor":
            mu = p["mu"]
            sim = rng.gauss(mu, p.get("sd", self.noise))
            if rng.random() < self.glance_rate:
                q *= rng.uniform(0.5, 0.8)
                sim -= rng.uniform(0.03, 0.12)
        elif kind == "photo":
            q = clamp(rng.gauss(p["q"], 0.01), 0.05, 0.99)
            sim = rng.gauss(p["mu"], p["sd"])
            if dark is not None:
                q = min(q, clamp(rng.gauss(dark["q"], 0.02), 0.05, 0.7))
        elif kind == "deepfake":
            if rng.random() < p.get("loss", 0.05):
                return 0, 0.0, round(rng.uniform(0.0, 0.15), 4)
            q = clamp(rng.gauss(p["q"], 0.05), 0.1, 0.95)
            sim = rng.gauss(p["mu"], p["sd"])
        elif kind == "two":  # the impostor and the candidate both in frame during a hand-over
            count = 2
            sim = rng.gauss(m.gen_mu + self.person_offset, self.noise)
        else:
            sim = rng.gauss(m.gen_mu, self.noise)
        sim -= m.q_slope * max(0.0, 0.85 - q) * rng.uniform(0.6, 1.2)
        return count, round(clamp(sim, 0.0, 1.0), 4), round(clamp(q, 0.0, 1.0), 4)


class FaceSchedule:
    def __init__(self, rng: random.Random, world: FaceWorld, start_t: float):
        self.rng = rng
        self.world = world
        self.base = rng.choice([30e3, 45e3, 60e3, 60e3, 60e3, 90e3, 120e3])
        self.next_t = start_t + rng.uniform(2e3, min(self.base, 20e3))

    def take(self, t):
        cnt, sim, q = self.world.check(t)
        self.next_t = t + clamp(self.base * (1 + self.rng.gauss(0, 0.06)), 30e3, 120e3)
        m = self.world.m
        return {"type": "face_check", "similarity": sim, "model_id": m.id, "model_version": m.version,
                "face_count": cnt, "quality": q}


class Recorder:
    """The candidate page's capture (web/capture): numbering, ts, clock rounding, cursor
    throttling, key-ups lost on blur or after 5 s, and the workspace checks."""

    def __init__(self, ws: Workspace, browser: Browser, started_ms: int, page0_wall: float,
                 rng: random.Random, face: FaceSchedule | None):
        self.ws = ws
        self.b = browser
        self.rng = rng
        self.started_ms = started_ms
        self.page0_wall = page0_wall
        self.drift = rng.gauss(0.0, 12e-6)
        self.face = face
        self.events: list[list] = []
        self.seq = 0
        self.t_h = 0.0  # page time of the last handler run
        self.last_ts = started_ms
        self.cur_last = -1e18
        self.cur_pending = None
        self.cur_timer = None
        self.held: list[tuple] = []
        self.mono_zero = 0.0
        self.res = browser.res
        self.frac = browser.frac
        self.n_keys = 0

    # --- clocks -------------------------------------------------------------------------
    def quant(self, t: float) -> float:
        t -= self.mono_zero
        r = self.res
        q = math.floor((t + 0.0015) / r) * r
        return max(0.0, round(q + self.frac, 3))

    def latency(self) -> float:
        r = self.rng.random()
        if r < 0.008:
            return self.rng.uniform(6, 60)  # a long task on the main thread (GC, layout)
        return 0.25 + lognorm(self.rng, 0.5, 0.6)

    def _push(self, t: float, data: dict):
        self.seq += 1
        ts = int(math.floor(self.page0_wall + t * (1.0 + self.drift)))
        if ts < self.last_ts:
            ts = self.last_ts
        self.last_ts = ts
        self.events.append([self.seq, ts, data])
        return data

    def _bg_until(self, t: float):
        while True:
            tf = self.face.next_t if self.face is not None else INF
            tc = self.cur_timer if self.cur_timer is not None else INF
            if min(tf, tc) > t:
                return
            if tc <= tf:
                self.t_h = max(self.t_h, tc)
                self.cur_timer = None
                self._release_cursor(self.t_h)
            else:
                self.t_h = max(self.t_h, tf)
                data = self.face.take(self.t_h)
                self._release_cursor(self.t_h)
                self._push(self.t_h, data)

    def at(self, t: float) -> float:
        if t < self.t_h:
            t = self.t_h
        self._bg_until(t)
        self.t_h = t
        return t

    def _release_cursor(self, t):
        d = self.cur_pending
        if d is None:
            return
        self.cur_pending = None
        self.cur_timer = None
        self.cur_last = t
        self._push(t, d)

    def enqueue(self, t: float, data: dict):
        t = self.at(t)
        self._release_cursor(t)
        return self._push(t, data)

    # --- events ---------------------------------------------------------------------------
    def keystroke(self, t_ev: float, kc: str, t_up: float | None, repeat=False) -> dict:
        data = {"type": "keystroke", "down_ms": self.quant(t_ev), "key_class": kc}
        self.enqueue(t_ev + self.latency(), data)
        self.n_keys += 1
        if t_up is not None and not repeat:
            self.set_up(data, t_ev, t_up)
        if len(self.held) > 24:
            self.held = [h for h in self.held if h[0] > self.t_h]
        return data

    def set_up(self, data: dict, t_down: float, t_up: float):
        if t_up - t_down > 5000:  # the outbox sends a key held 5 s without its key-up
            data.pop("up_ms", None)
            return
        up = self.quant(max(t_up, t_down))
        data["up_ms"] = max(up, data["down_ms"])
        self.held.append((t_up, data))

    def edit(self, t, f, pos, deleted, inserted, origin):
        t = self.at(t)
        self._release_cursor(t)
        self.ws.edit(f, pos, deleted, inserted)
        return self._push(t, {"type": "edit", "file": f, "position": pos, "deleted": deleted,
                              "inserted": inserted, "origin": origin})

    def cursor(self, t, f, pos, sel=None):
        t = self.at(t)
        n = len(self.ws.files[f])
        assert 0 <= pos <= n and (sel is None or 0 <= sel <= n)
        d = {"type": "cursor", "file": f, "position": pos}
        if sel is not None and sel != pos:
            d["selection_end"] = sel
        if self.cur_pending is None and t - self.cur_last >= 250:
            self.cur_last = t
            self._push(t, d)
        else:
            self.cur_pending = d
            if self.cur_timer is None:
                self.cur_timer = max(t, self.cur_last + 250)

    def focus_lost(self, t):
        t = self.at(t)
        for (tu, d) in self.held:
            if tu > t:
                d.pop("up_ms", None)
        self.held = []
        self.enqueue(t, {"type": "focus_lost"})

    def focus_regained(self, t):
        self.enqueue(t, {"type": "focus_regained"})

    def file_created(self, t, f, content=""):
        t = self.at(t)
        self._release_cursor(t)
        self.ws.create(f, content)
        self._push(t, {"type": "file_created", "file": f, "content": content})

    def code_run(self, t, command, exit_code, passed, failed, duration):
        d = {"type": "code_run", "command": command, "exit_code": exit_code,
             "duration_ms": int(duration)}
        if passed is not None:
            d["tests_passed"] = passed
            d["tests_failed"] = failed
        self.enqueue(t, d)

    def reload(self, t_new_page: float, browser_frac: float):
        """The page is loaded again: per FORMAT.md its monotonic clock restarts at 0."""
        self.mono_zero = t_new_page
        self.frac = browser_frac
        self.held = []

    def finish(self, t):
        self.at(t)
        self._release_cursor(self.t_h)


# =============================================================================================
# The driver: physical key presses, mouse actions and the editor's reaction (CodeMirror-like)
# =============================================================================================


class Exhausted(Exception):
    """A replay ran out of recorded timing."""


OPENERS = {"py": ":([{", "go": "{([", "ts": "{([", "sql": "(", "yaml": ":", "md": "", "txt": ""}


class Driver:
    def __init__(self, rec: Recorder, typist, layout: Layout, device: Device, rng: random.Random):
        self.rec = rec
        self.ws = rec.ws
        self.p = typist
        self.layout = layout
        self.dev = device
        self.rng = rng
        self.file: str | None = None
        self.pos = 0
        self.anchor: int | None = None
        self.goal_col: int | None = None
        self.t = 0.0
        self.last_down = -1e9
        self.last_key = None
        self.keyed = False
        self.mods: dict[str, list] = {}
        self.last_ev = 0.0

    # --- key presses -----------------------------------------------------------------------
    def _emit(self, t_phys: float, kc: str, t_up_phys: float | None) -> tuple:
        te = self.dev.snap(t_phys)
        if te < self.last_ev:
            te = self.last_ev
        self.last_ev = te
        tu = None
        if t_up_phys is not None:
            tu = max(self.dev.snap(t_up_phys), te)
        return self.rec.keystroke(te, kc, tu), te

    def _release(self, m: str, before: float | None):
        data, te, planned, last_use, noup, fixed = self.mods.pop(m)
        if noup:
            return
        if fixed:
            self.rec.set_up(data, te, max(planned, te))
            return
        up = planned if planned is not None else last_use + 70.0
        if before is not None:
            up = min(up, before - self.rng.uniform(2.0, 18.0))
        up = max(up, last_use + 6.0)
        self.rec.set_up(data, te, max(self.dev.snap(up), te))

    def release_all(self):
        for m in list(self.mods):
            self._release(m, None)

    def key(self, key: str, kc: str, mods=(), ann=None, effect=None, no_up=False):
        p = self.p
        kept = [m for m in mods if m in self.mods and p.keep_mod(m, key, ann)]
        new = [m for m in mods if m not in kept]
        ref = self.last_down if self.keyed else self.t
        tm, t_down, hold = p.chord(self, key, kc, new, ann, ref)
        first = tm[0][0] if tm else t_down
        for m in list(self.mods):
            if m not in kept:
                self._release(m, first)
        for m, (td, tu) in zip(new, tm):
            data, te = self._emit(td, "modifier", None)
            noup = tu is False
            if (p.human and self.layout.os == "windows" and m in ("Shift", "Control", "Alt")
                    and tu is None and t_down - td > 520.0):
                # Windows auto-repeats a held modifier: the first press loses its key-up.
                tr = td + 500.0
                while tr < t_down - 3.0:
                    self.rec.keystroke(max(tr, self.last_ev), "modifier", None, repeat=True)
                    self.last_ev = max(tr, self.last_ev)
                    tr += 33.3
                noup = True
            self.mods[m] = [data, te, tu, t_down, noup, tu is not None and tu is not False]
        for m in kept:
            self.mods[m][3] = t_down
        up = None if (no_up or hold is None) else t_down + hold
        self._emit(t_down, kc, up)
        for m in mods:
            rec = self.mods.get(m)
            if rec is not None and (m in kept or tm[new.index(m)][1] is None):
                rec[2] = t_down + (hold or 80.0) + p.mod_tail()
        self.t = t_down
        self.last_down = t_down
        self.keyed = True
        self.last_key = key
        if effect is not None:
            effect()

    def autorepeat(self, kc: str, times: list, effect):
        """Auto-repeated key-downs of a held key (no key-ups of their own)."""
        for tr in times:
            te = max(tr, self.last_ev)
            self.last_ev = te
            self.rec.keystroke(te, kc, None, repeat=True)
            self.t = tr
            self.last_down = tr
            if effect is not None:
                effect()

    # --- non-key actions -------------------------------------------------------------------
    def idle(self, ms: float):
        self.release_all()
        self.t += max(0.0, ms)
        self.keyed = False

    def click(self, f: str, pos: int, move_ms: float | None = None, sel: int | None = None):
        """A mouse click (or the end of a drag) in the editor."""
        self.release_all()
        if move_ms is None:
            move_ms = lognorm(self.rng, 700.0, 0.45)
        self.t += move_ms
        self.file = f
        self.pos = pos
        self.anchor = sel
        self.goal_col = None
        self.rec.cursor(self.t, f, pos, sel)
        self.keyed = False

    def drag_select(self, f: str, a: int, b: int):
        self.click(f, a)
        steps = self.rng.randint(1, 4)
        for i in range(1, steps + 1):
            self.t += lognorm(self.rng, 140.0, 0.5)
            head = a + (b - a) * i // steps
            self.rec.cursor(self.t, f, head, a)
        self.file, self.pos, self.anchor = f, b, a
        self.keyed = False

    # --- editor effects (the edits a key press causes) ----------------------------------------
    def _te(self) -> float:
        # the editor applies the key's change in the same task as the keydown handler: no timer
        # (face check, cursor throttle) can run in between
        return self.rec.t_h

    def _sel(self):
        if self.anchor is not None and self.anchor != self.pos:
            return min(self.anchor, self.pos), max(self.anchor, self.pos)
        return None

    def ins(self, s: str, origin: str = "typed"):
        sel = self._sel()
        if sel:
            self.rec.edit(self._te(), self.file, sel[0], sel[1] - sel[0], s, origin)
            self.pos = sel[0] + len(s)
        else:
            self.rec.edit(self._te(), self.file, self.pos, 0, s, origin)
            self.pos += len(s)
        self.anchor = None
        self.goal_col = None

    def enter(self):
        f = self.file
        sel = self._sel()
        if sel:
            self.ins("\n")
            return
        text = self.ws.files[f]
        p = self.pos
        ls, le = line_bounds(text, p)
        before = text[ls:p]
        if before and not before.strip(" \t"):
            start, ind = ls, before
        else:
            start = p
            ind = leading_ws(text[ls:le])
            stripped = before.rstrip()
            if stripped and stripped[-1] in OPENERS[lang_of(f)]:
                ind += indent_unit(f)
        k = 0
        while p + k < le and text[p + k] in " \t":
            k += 1
        self.rec.edit(self._te(), f, start, (p - start) + k, "\n" + ind, "typed")
        self.pos = start + 1 + len(ind)
        self.anchor = None
        self.goal_col = None

    def tab(self):
        f = self.file
        text = self.ws.files[f]
        ls, _ = line_bounds(text, self.pos)
        u = indent_unit(f)
        self.rec.edit(self._te(), f, ls, 0, u, "typed")
        self.pos += len(u)
        self.anchor = None

    def backspace(self):
        sel = self._sel()
        f = self.file
        if sel:
            self.rec.edit(self._te(), f, sel[0], sel[1] - sel[0], "", "typed")
            self.pos = sel[0]
            self.anchor = None
            return
        p = self.pos
        if p == 0:
            return
        text = self.ws.files[f]
        ls, _ = line_bounds(text, p)
        before = text[ls:p]
        n = 1
        if before and not before.strip(" \t") and before[-1] == " ":
            u = indent_unit(f)
            ul = 4 if u == "\t" else len(u)
            col = len(before.expandtabs(4))
            drop = col % ul or ul
            n = 0
            while n < drop and n < len(before) and before[-1 - n] == " ":
                n += 1
        self.rec.edit(self._te(), f, p - n, n, "", "typed")
        self.pos = p - n
        self.goal_col = None

    def ctrl_backspace(self):
        f = self.file
        text = self.ws.files[f]
        p = self.pos
        q = p
        while q > 0 and text[q - 1] == " ":
            q -= 1
        if q > 0:
            ch = text[q - 1]
            isw = ch.isalnum() or ch == "_"
            if ch == "\n":
                q -= 1
            else:
                while q > 0 and text[q - 1] != "\n" and text[q - 1] != " " and \
                        (text[q - 1].isalnum() or text[q - 1] == "_") == isw:
                    q -= 1
        if q < p:
            self.rec.edit(self._te(), f, q, p - q, "", "typed")
        self.pos = q
        self.anchor = None

    def paste(self, s: str, origin: str = "paste"):
        self.ins(s, origin)

    def undo_delete(self, pos: int, n: int):
        self.rec.edit(self._te(), self.file, pos, n, "", "undo")
        self.pos = pos
        self.anchor = None

    def complete(self, prefix_len: int, word: str):
        start = self.pos - prefix_len
        self.rec.edit(self._te(), self.file, start, prefix_len, word, "autocomplete")
        self.pos = start + len(word)

    def nav(self, name: str, select: bool = False):
        f = self.file
        text = self.ws.files[f]
        p = self.pos
        sel = self._sel()
        if not select and sel and name in ("ArrowLeft", "ArrowRight"):
            np = sel[0] if name == "ArrowLeft" else sel[1]
        else:
            ls, le = line_bounds(text, p)
            if name == "ArrowLeft":
                np = max(0, p - 1)
            elif name == "ArrowRight":
                np = min(len(text), p + 1)
            elif name == "Home":
                fs = ls + len(leading_ws(text[ls:le]))
                np = fs if p != fs else ls
            elif name == "End":
                np = le
            elif name in ("ArrowUp", "ArrowDown"):
                col = self.goal_col if self.goal_col is not None else p - ls
                if name == "ArrowUp":
                    if ls == 0:
                        np = 0
                    else:
                        pls, ple = line_bounds(text, ls - 1)
                        np = min(pls + col, ple)
                else:
                    if le >= len(text):
                        np = len(text)
                    else:
                        nls, nle = line_bounds(text, le + 1)
                        np = min(nls + col, nle)
                self.goal_col = col
            else:
                np = p
        if name not in ("ArrowUp", "ArrowDown"):
            self.goal_col = None
        if select:
            if self.anchor is None:
                self.anchor = p
        else:
            self.anchor = None
        self.pos = np
        self.rec.cursor(self._te(), f, np, self.anchor if select else None)


# =============================================================================================
# Typists: the human model (hierarchical) and the scripted timers
# =============================================================================================

CLASS_F = {"letter": 1.0, "digit": 1.18, "punctuation": 1.22, "whitespace": 0.95, "enter": 1.12,
           "backspace": 0.86, "navigation": 1.1, "delete": 1.0, "other": 1.1, "modifier": 1.0}
HOLD_F = {"whitespace": 1.06, "enter": 1.1, "backspace": 0.95, "navigation": 1.18, "other": 1.0}
REGIMES = {"flow": 0.84, "normal": 1.0, "hesitant": 1.35}


class Typist:
    """Behaviour knobs shared by every typist; the defaults are a script's: no mistakes."""

    err_rate = 0.0
    notice = 0.0
    late = 0.0
    p_wrong_word = 0.0
    p_delay_ins = 0.0
    p_retype = 0.0
    p_autocomplete = 0.0
    p_copy = 0.0
    p_hold_bs = 0.0
    p_ctrl_bs = 0.0
    p_undo = 0.0
    p_bug = 0.0
    sends_mods = True
    dead_keys = False
    drafts = False
    human = False

    def keep_mod(self, m, key, ann):
        return True

    def mod_tail(self):
        return 5.0

    def on_token(self, drv, ann):
        pass


class Human(Typist):
    """Hierarchical model: planning (line / block) -> retrieval (word) -> motor (digraph)."""

    human = True

    def __init__(self, rng: random.Random, P: dict, seed_label: str):
        self.rng = rng
        self.P = P
        self.idio_rng = rng_for("idio", seed_label)
        self.idio_cache: dict = {}
        self.regime = "normal"
        self.drift = 0.0
        self.chunk_left = 0
        for k in ("err_rate", "notice", "late", "p_wrong_word", "p_delay_ins", "p_retype",
                  "p_autocomplete", "p_copy", "p_hold_bs", "p_ctrl_bs", "p_undo", "p_bug",
                  "sends_mods", "dead_keys", "drafts"):
            if k in P:
                setattr(self, k, P[k])
        self.hunt = P.get("hunt", False)
        self.copy = P.get("copy", False)

    # -- motor -----------------------------------------------------------------------------
    def _idio(self, a, b) -> float:
        k = (a, b)
        v = self.idio_cache.get(k)
        if v is None:
            v = math.exp(self.idio_rng.gauss(0.0, self.P["idio"]))
            self.idio_cache[k] = v
        return v

    def motor(self, prev, key, kc) -> float:
        P = self.P
        rng = self.rng
        if self.hunt:
            d = key_distance(prev, key) if prev else 3.0
            m = P["hunt_a"] + P["hunt_b"] * math.log2(1.0 + d)
            if kc in ("digit", "punctuation") and rng.random() < 0.55:
                m += lognorm(rng, P["search"], 0.55)
            elif kc == "letter" and rng.random() < 0.15:
                m += lognorm(rng, P["search"] * 0.45, 0.6)
            m *= math.exp(rng.gauss(0.0, P["sigma"])) * self._idio(prev, key)
        else:
            f = digraph_factor(prev, key) if prev else 1.0
            f *= self._idio(prev, key) * CLASS_F.get(kc, 1.0)
            if kc == "punctuation":
                f *= P.get("punct_f", 1.0)
            elif kc == "digit":
                f *= P.get("digit_f", 1.0)
            m = P["iki"] * f * math.exp(rng.gauss(0.0, P["sigma"]))
        return max(m, P.get("min_gap", 22.0))

    def speed(self, drv) -> float:
        hours = drv.t / 3.6e6
        return REGIMES[self.regime] * math.exp(self.drift) * (1.0 + self.P.get("fatigue", 0.0) * hours)

    def on_token(self, drv, ann):
        P = self.P
        rng = self.rng
        stay = P.get("stay", 0.9)
        if rng.random() > stay:
            r = rng.random()
            if self.regime == "normal":
                self.regime = "flow" if r < 0.6 else "hesitant"
            elif self.regime == "flow":
                self.regime = "normal" if r < 0.85 else "hesitant"
            else:
                self.regime = "normal" if r < 0.8 else "flow"
        self.drift = self.drift * 0.96 + rng.gauss(0.0, P.get("drift_sd", 0.035))

    # -- cognition -------------------------------------------------------------------------
    def cognitive(self, ann, kc) -> float:
        P = self.P
        rng = self.rng
        c = 0.0
        if self.copy:
            if "ls" in ann:
                c += lognorm(rng, P["glance"] * 1.25, 0.4)
                if P.get("fake_plan"):
                    c += lognorm(rng, P["line_med"] * ann["ls"], P["line_sig"])
                self.chunk_left = rng.randint(3, 8)
            elif "ws" in ann:
                self.chunk_left -= 1
                if self.chunk_left <= 0:
                    c += lognorm(rng, P["glance"], 0.45)
                    self.chunk_left = rng.randint(3, 8)
                else:
                    c += lognorm(rng, P["word_med"] * 0.45, 0.45)
        else:
            if "ls" in ann:
                cx = 1.0 if P.get("flat") else ann["ls"]
                if ann.get("prose"):
                    cx *= P.get("prose_f", 1.0)
                c += lognorm(rng, P["line_med"] * cx, P["line_sig"])
                if rng.random() < P.get("p_long", 0.04) * cx:
                    c += lognorm(rng, P.get("long_med", 9000.0), 0.7)
            elif "ws" in ann:
                if not ann.get("prose") and rng.random() < P.get("p_tok_think", 0.0):
                    c += lognorm(rng, P.get("tok_think", 1800.0), 0.8)
                fam = 1.0 if P.get("flat") else ann.get("fam", 1.0)
                w = P["word_med"] * fam * (1.0 + 0.05 * ann.get("len", 4))
                if ann.get("prose"):
                    w *= P.get("prose_f", 1.0)
                if self.regime == "hesitant":
                    w *= 1.6
                c += lognorm(rng, w, P.get("word_sig", 0.6))
        if ann.get("mid") and rng.random() < P.get("p_mid", 0.03):
            c += lognorm(rng, P.get("mid_med", 260.0), 0.6)
        if "fix" in ann:
            c += lognorm(rng, P.get("react", 380.0), 0.4)
        if "eol" in ann and rng.random() < 0.3:
            c += lognorm(rng, P["word_med"] * 1.5, 0.6)
        if "pause" in ann:
            c += ann["pause"]
        return c

    def hold(self, key, kc) -> float:
        P = self.P
        h = P["hold"] * HOLD_F.get(kc, 1.0) * math.exp(self.rng.gauss(0.0, P["hold_sig"]))
        pos = KEYPOS.get(key)
        if pos is not None and pos[3] == 5:
            h *= 1.05
        if self.regime == "flow":
            h *= 0.95
        return clamp(h, 28.0, 900.0)

    def chord(self, drv, key, kc, new_mods, ann, ref):
        P = self.P
        rng = self.rng
        ann = ann or {}
        if not drv.keyed:
            g = lognorm(rng, P.get("react_idle", 420.0), 0.4) + self.cognitive(ann, kc)
        else:
            g = self.motor(drv.last_key, key, kc) * self.speed(drv) + self.cognitive(ann, kc)
        if new_mods:
            g += P.get("mod_cost", 55.0) * math.exp(rng.gauss(0.0, 0.35)) * len(new_mods)
        t_down = max(ref + g, drv.t + 1.0)
        tm = []
        if new_mods:
            lo = (drv.last_down if drv.keyed else drv.t) + 2.0
            lead = lognorm(rng, P.get("mod_lead", 95.0), 0.35)
            if self.hunt:
                lead *= rng.uniform(1.0, 2.2)
            lead = min(lead, max(4.0, t_down - lo - 2.0))
            t0 = max(t_down - lead, lo)
            for i, m in enumerate(new_mods):
                if i == 0:
                    tm.append((t0, None))
                elif m == "AltGraph" and new_mods[0] == "Control":
                    tm.append((tm[-1][0] + rng.uniform(0.0, 0.4), None))  # one physical AltGr key
                else:
                    tm.append((min(tm[-1][0] + lognorm(rng, 45.0, 0.4), t_down - 1.0), None))
        return tm, t_down, self.hold(key, kc)

    def keep_mod(self, m, key, ann):
        return self.rng.random() < self.P.get("shift_hold", 0.75)

    def mod_tail(self):
        return self.rng.gauss(self.P.get("mod_tail", 25.0), 28.0)


class Scripted(Typist):
    """Base of the scripted typists: a delay and a hold per key from a rule, no thinking."""

    def __init__(self, rng: random.Random, sends_mods=True, mod_gap=(0.05, 0.3), mod_hold_extra=0.5):
        self.rng = rng
        self.sends_mods = sends_mods
        self.mod_gap = mod_gap
        self.mod_hold_extra = mod_hold_extra

    def draw_gap(self, drv, key, kc, ann) -> float:
        raise NotImplementedError

    def draw_hold(self, key, kc) -> float:
        raise NotImplementedError

    def chord(self, drv, key, kc, new_mods, ann, ref):
        ann = ann or {}
        g = self.draw_gap(drv, key, kc, ann) + ann.get("pause", 0.0)
        if not drv.keyed:
            g = max(g, ann.get("start", 0.0))
        tm = []
        if new_mods:
            t0 = ref + g
            for m in new_mods:
                tm.append((t0, None))
                t0 += self.rng.uniform(*self.mod_gap)
            t_down = t0
        else:
            t_down = ref + g
        t_down = max(t_down, drv.t + 0.05)
        return tm, t_down, self.draw_hold(key, kc)

    def keep_mod(self, m, key, ann):
        return False

    def mod_tail(self):
        return self.mod_hold_extra


class ReplayTimer(Typist):
    """Replays recorded (gap, hold) pairs of another session, one per key press, in order."""

    def __init__(self, rng, pairs, jitter=0.0, scale=1.0, hold_jitter=0.0, align=None):
        self.rng = rng
        self.align = align
        self.pairs = pairs
        self.i = 0
        self.jitter = jitter
        self.scale = scale
        self.hold_jitter = hold_jitter

    def _next(self):
        if self.i >= len(self.pairs):
            raise Exhausted()
        g, h = self.pairs[self.i]
        self.i += 1
        if self.jitter or self.scale != 1.0:
            g = max(0.3, g * self.scale + self.rng.gauss(0.0, self.jitter))
            if h is not None:
                h = max(1.0, h * self.scale + self.rng.gauss(0.0, self.hold_jitter))
        return g, h

    def chord(self, drv, key, kc, new_mods, ann, ref):
        tm = []
        t = ref
        for m in new_mods:
            g, h = self._next()
            t = max(t + g, drv.t + 0.001)
            tm.append((t, False if h is None else t + h))  # False: its key-up was never seen
        g, h = self._next()
        t_down = max(t + g, drv.t + 0.001)
        if self.align and self.i == 1:
            # the first key lands on the source's grid (shifted by whole grid steps, whole
            # milliseconds for the 1/60 s clock), so every later gap and hold is the recorded one
            unit, base = self.align
            t_down = base + math.ceil((t_down - base) / unit) * unit
        return tm, t_down, h

    def keep_mod(self, m, key, ann):
        return False

    def mod_tail(self):
        return 0.0


# =============================================================================================
# Behaviours: typing text the way a person (or a script) does it in the editor
# =============================================================================================

KEYWORDS = set("""
def class return if elif else for while in not and or is None True False self import from as with
try except finally raise async await pass lambda yield func package type struct interface map chan
go defer nil err string int int64 bool const var range switch case default break continue select
export function let new this await Promise void number boolean undefined null throw catch extends
implements readonly private public static SELECT FROM WHERE JOIN ON AND OR GROUP BY ORDER LIMIT
INSERT INTO VALUES UPDATE SET CREATE INDEX TABLE ALTER ADD COLUMN NOT NULL DEFAULT PRIMARY KEY
the a an of to is it that this for on with be are as we when it's not
""".split())

BLOCK_RE = re.compile(
    r"^(def |async def |class |func |if |elif |else|for |while |switch |case |try|except|finally|"
    r"with |interface |type |export |function |CREATE |ALTER |SELECT|WITH |BEGIN|## |# )")
COMMENT_PREFIXES = ("#", "//", "--", "/*", "* ", "*/")
DEAD_COMBINE = {"'": "aeiouycAEIOUYC", '"': "aeiouyAEIOUY", "`": "aeiouAEIOU", "~": "anoANO",
                "^": "aeiouAEIOU"}


def tokenize(s: str):
    toks = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isalnum() or c == "_":
            j = i + 1
            while j < n and (s[j].isalnum() or s[j] == "_"):
                j += 1
            toks.append((i, j, "num" if c.isdigit() else "word"))
        elif c == " ":
            j = i + 1
            while j < n and s[j] == " ":
                j += 1
            toks.append((i, j, "space"))
        else:
            j = i + 1
            toks.append((i, j, "punct"))
        i = j
    return toks


def line_cx(content: str, mode: str) -> float:
    s = content.strip()
    if mode == "prose":
        return 1.1 + min(2.2, len(s) / 150.0) + (0.6 if s.startswith("#") else 0.0)
    if len(s) <= 3 or s in ("});", "})", "},", "),", "];", ");", "end"):
        return 0.25
    if s.startswith(COMMENT_PREFIXES):
        return 1.3 + min(1.2, len(s) / 110.0)
    if BLOCK_RE.match(s):
        return 1.55
    return 0.5 + min(1.1, len(s) / 65.0)


def is_comment(content: str, mode: str) -> bool:
    s = content.strip()
    return mode == "prose" or s.startswith(COMMENT_PREFIXES)


def type_char(drv: Driver, c: str, nxt: str = "", ann=None) -> int:
    """Types one character (two when a dead key combines with the next); returns how many."""
    p = drv.p
    if c == "\n":
        drv.key("Enter", "enter", (), ann, drv.enter)
        return 1
    lay = drv.layout
    mods = lay.mods(c) if p.sends_mods else ()
    if p.dead_keys and c in lay.dead:
        drv.key("Dead", "other", mods, ann, None)
        if nxt and nxt not in DEAD_COMBINE.get(c, "") and nxt not in lay.dead and nxt not in " \n\t":
            nm = lay.mods(nxt) if p.sends_mods else ()
            drv.key(base_key(nxt), char_class(nxt), nm, None, lambda: drv.ins(c + nxt))
            return 2
        drv.key(" ", "whitespace", (), None, lambda: drv.ins(c))
        return 1
    if c == "\t":
        drv.key("Tab", "whitespace", (), ann, lambda: drv.ins("\t"))
        return 1
    drv.key(base_key(c), char_class(c), mods, ann, lambda: drv.ins(c))
    return 1


class Session:
    """Everything one session's behaviours share."""

    def __init__(self, rng, drv, ws, rec, assessment, face_world):
        self.rng = rng
        self.drv = drv
        self.ws = ws
        self.rec = rec
        self.assessment = assessment
        self.face = face_world
        self.seen: dict = {}
        self.pending: list = []
        self.vocab: list = []
        self.runs = 0
        self.progress = 0.0
        self.line_hook = None
        self.chunk_hook = None

    def at_line_start(self) -> bool:
        text = self.ws.files[self.drv.file]
        ls, _ = line_bounds(text, self.drv.pos)
        return not text[ls:self.drv.pos].strip(" \t")


def fix_indent(S: Session, target: str):
    drv = S.drv
    f = drv.file
    u = indent_unit(f)
    for _ in range(40):
        text = S.ws.files[f]
        ls, _ = line_bounds(text, drv.pos)
        cur = text[ls:drv.pos]
        if cur == target or cur.strip(" \t"):
            return
        if len(cur) < len(target) and target.startswith(cur):
            rem = target[len(cur):]
            if rem.startswith(u) and (not cur or cur.replace(u, "") == ""):
                drv.key("Tab", "whitespace", (), None, drv.tab)
            else:
                ch = rem[0]
                drv.key(" " if ch == " " else "Tab", "whitespace", (), None, lambda ch=ch: drv.ins(ch))
        else:
            drv.key("Backspace", "backspace", (), None, drv.backspace)


def delete_back(S: Session, n: int, ann0=None):
    drv, P, rng = S.drv, S.drv.p, S.rng
    if n <= 0:
        return
    ann0 = ann0 if ann0 is not None else {"fix": 1}
    if n >= 5 and rng.random() < P.p_hold_bs:
        hold_backspace(S, n, ann0)
        return
    for j in range(n):
        drv.key("Backspace", "backspace", (), ann0 if j == 0 else {"bs": 1}, drv.backspace)


def hold_backspace(S: Session, n: int, ann0):
    drv, rng = S.drv, S.rng
    delay, rate = {"windows": (500.0, 33.3), "mac": (375.0, 83.3)}.get(drv.layout.os, (500.0, 40.0))
    text = S.ws.files[drv.file]
    p = drv.pos
    o = 0
    if rng.random() < 0.45:
        o = rng.randint(1, 3)
        chunk = text[max(0, p - n - o):p - n]
        ls, _ = line_bounds(text, p)
        if p - n - o < ls or not chunk.strip() or "\n" in chunk or any(ch in drv.layout.dead for ch in chunk):
            o = 0
    lost = text[p - n - o:p - n] if o else ""
    drv.key("Backspace", "backspace", (), ann0, drv.backspace, no_up=True)
    t0 = drv.t
    times = []
    for k in range(n + o - 1):
        times.append(t0 + delay * (1 + rng.gauss(0, 0.01)) + k * rate + rng.gauss(0.0, 0.8))
    times.sort()
    drv.autorepeat("backspace", times, drv.backspace)
    drv.keyed = True
    drv.last_key = "Backspace"
    drv.last_down = drv.t + rng.uniform(30, 90)  # the key comes up a moment after the last repeat
    for j, ch in enumerate(lost):
        type_char(drv, ch, "", {"fix": 1} if j == 0 else None)


def typo(S: Session, s: str, i: int, ann, tok_end: int):
    """A slip at s[i], noticed some keys later and corrected; returns where typing resumes."""
    drv, P, rng = S.drv, S.drv.p, S.rng
    n = len(s)
    c = s[i]
    kind = wchoice(rng, [("sub", 55), ("ins", 15), ("omit", 12), ("transp", 18)])
    if kind == "transp" and not (i + 1 < n and s[i + 1].isalnum() and s[i + 1].lower() != c.lower()):
        kind = "sub"
    if kind == "omit" and i + 1 >= n:
        kind = "sub"
    nb = neighbours(c)
    if kind in ("sub", "ins") and not nb:
        return None
    if P.late and rng.random() < P.late:
        k = max(0, tok_end - i - 1) + (rng.randint(0, 4) if rng.random() < 0.3 else 0)
    else:
        k = geometric(rng, P.notice)
    if kind == "sub":
        k = min(k, n - i - 1)
        typed = rng.choice(nb) + s[i + 1:i + 1 + k]
        resume, dels = i, len(typed)
    elif kind == "ins":
        k = min(k, n - i - 1)
        typed = c + rng.choice(nb) + s[i + 1:i + 1 + k]
        resume, dels = i + 1, len(typed) - 1
    elif kind == "omit":
        k = max(1, min(k + 1, n - i - 1))
        typed = s[i + 1:i + 1 + k]
        resume, dels = i, len(typed)
    else:
        k = min(k, n - i - 2)
        typed = s[i + 1] + c + s[i + 2:i + 2 + k]
        resume, dels = i, len(typed)
    if not typed or "\n" in typed or (P.dead_keys and any(ch in drv.layout.dead for ch in typed)):
        return None
    for j, ch in enumerate(typed):
        type_char(drv, ch, "", ann if j == 0 else None)
    delete_back(S, dels)
    return resume


def make_alt(S: Session, w: str):
    rng = S.rng
    cands = [v for v in S.vocab if v[0] == w[0] and v != w and abs(len(v) - len(w)) <= 4 and len(v) >= 3]
    if cands and rng.random() < 0.6:
        return rng.choice(cands)
    cut = max(2, len(w) // 2 + rng.randint(-1, 1))
    return w[:cut] + rng.choice(["er", "ing", "s", "ed", "_id", "Count", "ion", "al", "e", "ity"])


def wrong_word(S: Session, w: str, ann):
    """Starts a word, changes their mind, deletes it (a revision, not a slip)."""
    drv, P, rng = S.drv, S.drv.p, S.rng
    alt = make_alt(S, w)
    if not alt or not all(ch.isalnum() or ch == "_" for ch in alt):
        return
    text = S.ws.files[drv.file]
    before_ok = drv.pos == 0 or not (text[drv.pos - 1].isalnum() or text[drv.pos - 1] == "_")
    if rng.random() < 0.35:
        alt = alt[:max(2, rng.randint(2, len(alt)))]
    for j, ch in enumerate(alt):
        type_char(drv, ch, "", ann if j == 0 else None)
    pause = {"fix": 1, "pause": lognorm(rng, 650.0, 0.7)}
    r = rng.random()
    if before_ok and r < P.p_ctrl_bs:
        wm = ("Alt",) if drv.layout.os == "mac" else ("Control",)
        drv.key("Backspace", "backspace", wm, pause, drv.ctrl_backspace)
    elif before_ok and r < P.p_ctrl_bs + P.p_undo:
        start = drv.pos - len(alt)
        drv.key("z", "letter", (drv.layout.shortcut,), pause, lambda: drv.undo_delete(start, len(alt)))
    else:
        delete_back(S, len(alt), pause)


def autocomplete(S: Session, w: str, ann):
    drv, rng = S.drv, S.rng
    k = rng.randint(2, max(2, min(4, len(w) - 3)))
    for j in range(k):
        type_char(drv, w[j], "", ann if j == 0 else None)
    accept = "Enter" if rng.random() < 0.7 else "Tab"
    drv.key(accept, "enter" if accept == "Enter" else "whitespace", (),
            {"pause": lognorm(rng, 380.0, 0.5)}, lambda: drv.complete(k, w))


def type_content(S: Session, s: str, mode: str, ls_cx=None):
    """Types one line's content (no newlines) at the cursor."""
    drv, P, rng = S.drv, S.drv.p, S.rng
    n = len(s)
    if n == 0:
        return
    toks = tokenize(s)
    tstart = {a: (b, k) for (a, b, k) in toks}
    prose = is_comment(s, mode)
    human = P.human
    done = set()
    cur_end, cur_kind, cur_start = 0, "punct", 0
    i = 0
    first = True
    while i < n:
        newtok = False
        if i in tstart:
            cur_start = i
            cur_end, cur_kind = tstart[i]
            if i not in done:
                newtok = True
                done.add(i)
        c = s[i]
        ann = None
        if human or P.err_rate:
            ann = {}
            if first and ls_cx is not None:
                ann["ls"] = ls_cx
                if prose:
                    ann["prose"] = 1
            elif newtok and cur_kind in ("word", "num"):
                w = s[i:cur_end]
                ann["ws"] = 1
                ann["len"] = len(w)
                ann["fam"] = 0.55 if (w in S.seen or w in KEYWORDS) else 1.0
                if prose:
                    ann["prose"] = 1
            elif cur_kind == "word" and i - cur_start >= 5:
                ann["mid"] = 1
            if newtok:
                P.on_token(drv, ann)
            if newtok and cur_kind == "word":
                w = s[i:cur_end]
                if (P.p_autocomplete and len(w) >= 7 and w in S.seen and rng.random() < P.p_autocomplete
                        and w in S.ws.files[drv.file]):
                    autocomplete(S, w, ann)
                    i = cur_end
                    first = False
                    continue
                if P.p_wrong_word and len(w) >= 4 and rng.random() < P.p_wrong_word * (1.4 if prose else 1.0):
                    wrong_word(S, w, ann)
                    ann = {"ws": 1, "len": len(w), "fam": 0.5}
                S.seen[w] = 1
            if P.err_rate and c.isalnum() and rng.random() < P.err_rate * (1.3 if prose else 1.0):
                r = typo(S, s, i, ann, cur_end)
                if r is not None:
                    i = r
                    first = False
                    continue
        i += type_char(drv, c, s[i + 1] if i + 1 < n else "", ann)
        first = False


def pick_span(rng, content: str):
    """A piece of a line a person may leave out and come back to add (an argument, a condition)."""
    toks = tokenize(content)
    cands = []
    for a_i in range(1, len(toks)):
        a = toks[a_i][0]
        if content[a - 1] == " " and toks[a_i][2] != "space":
            continue
        for b_i in range(a_i + 1, min(len(toks), a_i + 8) + 1):
            b = toks[b_i - 1][1]
            if 3 <= b - a <= 26 and b < len(content) and content[a:b].strip() and not content[a:b].startswith(" " * 2):
                cands.append((a, b))
    if not cands:
        return None
    return rng.choice(cands)


def find_copy_source(S: Session, content: str):
    here = S.drv.file
    order = [here] + [f for f in S.ws.files if f != here]
    for f in order:
        j = S.ws.files[f].find(content)
        if j >= 0:
            return f, j
    return None


def copy_paste(S: Session, src, content: str):
    drv, rng = S.drv, S.rng
    sf, sp = src
    back = S.ws.marker(drv.file, drv.pos, True)
    drv.drag_select(sf, sp, sp + len(content))
    drv.key("c", "letter", (drv.layout.shortcut,), {"pause": lognorm(rng, 300.0, 0.5)}, None)
    drv.click(back.file, back.pos)
    drv.key("v", "letter", (drv.layout.shortcut,), None, lambda: drv.paste(content))
    S.ws.drop(back)


def go_back_and_insert(S: Session, item):
    drv, rng = S.drv, S.rng
    m = item["marker"]
    resume = S.ws.marker(drv.file, drv.pos, True)
    drv.click(m.file, m.pos, move_ms=lognorm(rng, 1100.0, 0.5))
    drv.idle(lognorm(rng, 450.0, 0.6))
    type_content(S, item["text"], "code", None)
    S.ws.drop(m)
    text = S.ws.files[resume.file]
    done = False
    if resume.file == drv.file and resume.pos > drv.pos and rng.random() < 0.45:
        between = text[drv.pos:resume.pos]
        dl = between.count("\n")
        _, le = line_bounds(text, resume.pos)
        if 0 < dl <= 8 and le == resume.pos:
            for _ in range(dl):
                drv.key("ArrowDown", "navigation", (), None, lambda: drv.nav("ArrowDown"))
            drv.key("End", "navigation", (), None, lambda: drv.nav("End"))
            done = drv.pos == resume.pos
    if not done:
        drv.click(resume.file, resume.pos)
    S.ws.drop(resume)


def process_pending(S: Session, trigger: str, li=None):
    for item in list(S.pending):
        if item["trigger"] != "lines":
            continue
        if trigger == "end" or (li is not None and li >= item["due"]):
            S.pending.remove(item)
            go_back_and_insert(S, item)


def retype_line(S: Session, content: str, mode: str):
    drv, rng = S.drv, S.rng
    drv.key("Home", "navigation", ("Shift",), {"pause": lognorm(rng, 1300.0, 0.6)},
            lambda: drv.nav("Home", select=True))
    if drv._sel() is None:
        return
    drv.key("Backspace", "backspace", (), {"fix": 1}, drv.backspace)
    type_content(S, content, mode, line_cx(content, mode) * 0.45)


def type_text(S: Session, text: str, mode: str = "code", inline: bool = False):
    """Types text (which may span lines) at the cursor, with the typist's habits. `inline`: the
    first line continues whatever precedes the cursor (a replaced selection)."""
    drv, P, rng = S.drv, S.drv.p, S.rng
    lines = text.split("\n")
    for li, line in enumerate(lines):
        if li > 0:
            drv.key("Enter", "enter", (), {"eol": 1} if P.human else None, drv.enter)
            if S.line_hook is not None:
                S.line_hook(S)
        at_start = not inline and S.at_line_start()
        if li > 0 or at_start:
            ind = leading_ws(line)
            content = line[len(ind):]
            if not content:
                continue
            fix_indent(S, ind)
            cx = line_cx(content, mode)
        else:
            content = line
            cx = None
        if not content:
            continue
        if S.chunk_hook is not None:
            S.chunk_hook(S, li, lines)
        lmode = "prose" if is_comment(content, mode) else mode
        if P.human and P.p_copy and len(content) >= 16 and rng.random() < P.p_copy:
            src = find_copy_source(S, content)
            if src is not None:
                copy_paste(S, src, content)
                continue
        span = None
        trig = None
        if P.human and len(content) >= 12 and lmode == "code":
            if P.p_bug and rng.random() < P.p_bug:
                span, trig = pick_span(rng, content), "run"
            elif P.p_delay_ins and rng.random() < P.p_delay_ins:
                span, trig = pick_span(rng, content), "lines"
        if span is not None:
            a, b = span
            type_content(S, content[:a], lmode, cx)
            m = S.ws.marker(drv.file, drv.pos, False)
            type_content(S, content[b:], lmode, None)
            S.pending.append({"marker": m, "text": content[a:b], "trigger": trig,
                              "due": li + rng.randint(1, 6)})
        else:
            type_content(S, content, lmode, cx)
            if P.p_retype and len(content) >= 8 and rng.random() < P.p_retype:
                cur = S.ws.files[drv.file]
                seg = cur[line_bounds(cur, drv.pos)[0]:drv.pos]
                if seg.lstrip(" \t") == content:
                    retype_line(S, content, lmode)
        process_pending(S, "lines", li)
    process_pending(S, "end")


# =============================================================================================
# Content: what candidates type, per assessment (plausible code, comments and notes)
# =============================================================================================


def F(file, op, text, mode=None, **kw):
    if mode is None:
        mode = "prose" if file.endswith(".md") else "code"
    if file.endswith(".go"):
        text = "\n".join(_tabify(line) for line in text.split("\n"))
        for k in ("old", "start", "end", "anchor", "ctx"):
            if k in kw:
                kw[k] = "\n".join(_tabify(line) for line in kw[k].split("\n"))
    d = {"file": file, "op": op, "text": text.strip("\n") if op != "replace" and op != "range" else text,
         "mode": mode}
    if op in ("after",) and text.startswith("\n"):
        d["text"] = "\n" + text.strip("\n")
    d.update(kw)
    return d


def _tabify(line: str) -> str:
    n = len(line) - len(line.lstrip(" "))
    return "\t" * (n // 4) + " " * (n % 4) + line[n:]


BANK: dict[str, list] = {}

BANK["bug-hunt"] = [
    F("invoices/fx.py", "range", '''# Fetch before marking the table fresh, and swap it in one assignment: a request
        # thread must never see an empty dict while another one refreshes (SUP-1202).
        fresh = self._fetch()
        self._rates = fresh
        self._fetched_at = now''',
      start="# Mark the table fresh first", end="self._rates.update(self._fetch())", tag="fix"),
    F("invoices/listing.py", "replace", "total_pages = max(-(-total // PAGE_SIZE), 1)  # round up: 47 invoices are 3 pages",
      old="total_pages = max(total // PAGE_SIZE, 1)", tag="fix"),
    F("invoices/listing.py", "after", '''from zoneinfo import ZoneInfo''', anchor="from datetime import date, datetime", tag="fix"),
    F("invoices/listing.py", "range", '''def is_overdue(invoice: Invoice, tz: str = "UTC", now: datetime | None = None) -> bool:
    # due_date is a calendar day in the account's time zone: compare it with the local date,
    # not with the UTC one (SUP-1197: fees charged a day early for accounts in the Americas).
    now = now or datetime.now(ZoneInfo(tz))
    local_today = now.astimezone(ZoneInfo(tz)).date()
    return invoice.status == "open" and local_today > invoice.due_date''',
      start="def is_overdue(invoice: Invoice) -> bool:", end="> invoice.due_date", tag="fix"),
    F("invoices/listing.py", "replace", '"overdue": is_overdue(invoice, account.timezone),',
      old='"overdue": is_overdue(invoice),', tag="fix"),
    F("invoices/listing.py", "replace", "if not is_overdue(invoice, account.timezone):",
      old="if not is_overdue(invoice):", tag="fix"),
    F("invoices/payments.py", "range", '''with db.transaction():
        # Lock the invoice first: two deliveries of the same event, or two parts of a split
        # payment, are serialised here instead of both reading the old balance.
        invoice = db.execute(
            "SELECT balance_cents, status FROM invoices WHERE id = %s FOR UPDATE",
            (invoice_id,),
        ).fetchone()
        if invoice is None:
            raise LookupError(f"invoice {invoice_id} not found")
        inserted = db.execute(
            "INSERT INTO payments (invoice_id, amount_cents, provider_ref, received_at)"
            " VALUES (%s, %s, %s, now()) ON CONFLICT (provider_ref) DO NOTHING",
            (invoice_id, amount_cents, provider_ref),
        ).rowcount
        if not inserted:
            return  # a redelivery: already applied
        balance = invoice.balance_cents - amount_cents
        db.execute(
            "UPDATE invoices SET balance_cents = %s, status = %s WHERE id = %s",
            (balance, "paid" if balance <= 0 else "open", invoice_id),
        )''', start="already = db.execute(", end='(balance, "paid" if balance <= 0 else "open", invoice_id),\n    )', tag="fix"),
    F("invoices/schema.sql", "end", '''-- payments.provider_ref must be unique for ON CONFLICT to work (and to stop duplicates).
CREATE UNIQUE INDEX IF NOT EXISTS payments_provider_ref_key ON payments (provider_ref);'''),
    F("tests/test_tickets.py", "end", r'''class DefectRegressionTests(unittest.TestCase):
    def test_rate_cache_never_serves_an_empty_table(self):
        def slow_fetch():
            time.sleep(0.05)
            return {"EUR": Decimal(1), "USD": Decimal("1.0842")}

        cache = RateCache(fetch=slow_fetch, ttl_seconds=0)
        errors = []

        def convert():
            try:
                cache.convert(1000, "EUR", "USD")
            except KeyError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=convert) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_overdue_uses_the_account_time_zone(self):
        invoice = Invoice(1, "INV-00001", "Acme", "USD", 1000, 1000, date(2026, 3, 1), "open", False)
        evening = datetime(2026, 3, 1, 18, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
        self.assertFalse(is_overdue(invoice, "America/Los_Angeles", now=evening))
        self.assertTrue(is_overdue(invoice, "Europe/Berlin", now=evening))'''),
    F("tests/test_tickets.py", "end", r'''class DuplicateWebhookTests(DatabaseTestCase):
    def test_the_same_event_twice_is_applied_once(self):
        self.add_account(7001)
        invoice_id = self.add_invoices(7001, 1)[0]
        conn = db.get_db()
        for _ in range(2):
            record_payment(conn, invoice_id, 2500, "pi_3NvQ2c")
        row = conn.execute(
            "SELECT balance_cents FROM invoices WHERE id = %s", (invoice_id,)
        ).fetchone()
        self.assertEqual(row.balance_cents, 7500)

    def test_two_parts_of_a_split_payment_both_count(self):
        self.add_account(7002)
        invoice_id = self.add_invoices(7002, 1)[0]
        conn = db.get_db()
        record_payment(conn, invoice_id, 4000, "pi_a")
        record_payment(conn, invoice_id, 6000, "pi_b")
        row = conn.execute(
            "SELECT balance_cents, status FROM invoices WHERE id = %s", (invoice_id,)
        ).fetchone()
        self.assertEqual((row.balance_cents, row.status), (0, "paid"))'''),
    F("FINDINGS.md", "new", '''# Findings

## 1. Payments applied twice (SUP-1190): money

`invoices/payments.py`, `record_payment`: the check for an existing `provider_ref` and the insert are two statements in autocommit mode, so two deliveries of the same webhook that arrive together both pass the check and both reduce the balance. The fix locks the invoice row in a transaction and relies on a unique index on `provider_ref` with `ON CONFLICT DO NOTHING`.

Impact: customers were marked paid, or credited, for money they never sent. To find them: `SELECT provider_ref, count(*) FROM payments GROUP BY 1 HAVING count(*) > 1`.'''),
    F("FINDINGS.md", "end", '''## 2. Exchange rates missing during a refresh (SUP-1202): availability

`invoices/fx.py`, `RateCache._refresh_if_stale` clears the shared dict and then fetches. Another thread that reads during the fetch gets a `KeyError` and the dashboard answers 500. The fix fetches first and swaps the table in one assignment.

Impact: intermittent errors every five minutes under load; no data is wrong. The 500s in the access log at the refresh boundary show who was affected.'''),
    F("FINDINGS.md", "end", '''## 3. Oldest invoices unreachable (SUP-1184): annoyance, some money

`invoices/listing.py`, `total_pages` uses floor division, so 47 invoices give 2 pages and page 3 answers 404. Rounding up fixes it. Accounts with a number of invoices that is not a multiple of 20 are affected, which is most of them.

## 4. Late fees a day early (SUP-1197): money

`is_overdue` compares the due date with the UTC date. For an account in Los Angeles the UTC date moves on at 4 or 5 pm local time, so the hourly job charges the late fee while the invoice is still payable. I pass the account's time zone. Affected: `late_fee_applied` invoices whose payment arrived on the due date in local time.'''),
    F("FINDINGS.md", "end", '''## Other things I noticed

- `serialize` converts with the cached rates of whichever thread refreshed last; fine, but the rate used is not stored with the invoice.
- `send_overdue_reminders` sends the email outside the transaction: a crash between the update and the send loses the reminder. An outbox table would fix that.
- `list_invoices` counts and then selects in two statements; a concurrent insert can shift a page.'''),
]

BANK["async-task-queue"] = [
    F("jobqueue/schema.sql", "replace", '''created_at timestamptz NOT NULL DEFAULT now(),
    state       text        NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'succeeded', 'dead')),
    attempts    integer     NOT NULL DEFAULT 0,
    lease_until timestamptz,
    last_error  text,
    dedupe_key  text,
    finished_at timestamptz''', old="created_at timestamptz NOT NULL DEFAULT now()\n    -- TODO: state, attempts, lease, last error, dedupe key, finished_at, ...", tag="fix"),
    F("jobqueue/schema.sql", "replace", '''-- Claiming: the next runnable job by priority, then run_at.
CREATE INDEX jobs_claim_idx ON jobs (priority DESC, run_at) WHERE state = 'pending';
-- Expired leases are found by the reaper.
CREATE INDEX jobs_lease_idx ON jobs (lease_until) WHERE state = 'running';
-- At most one live job per dedupe key; finished jobs free the key.
CREATE UNIQUE INDEX jobs_dedupe_idx ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'running');''',
      old="-- TODO: indexes for claiming and for deduplication.", tag="fix"),
    F("jobqueue/worker.py", "replace", '''exp = config.backoff_base * (2 ** max(0, attempt - 1))
    capped = min(exp, config.backoff_cap)
    # Full jitter: spread retries of jobs that failed together (AWS architecture blog).
    rng = rng or random.Random()
    return timedelta(seconds=rng.uniform(0, capped.total_seconds()))''',
      ctx="TODO: exponential from config.backoff_base", old="raise NotImplementedError", tag="fix"),
    F("jobqueue/worker.py", "replace", r'''async with self._pool.acquire() as conn:
            if dedupe_key is not None:
                existing = await conn.fetchval(
                    "SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN ('pending', 'running')",
                    dedupe_key,
                )
                if existing is not None:
                    return existing
            job_id = await conn.fetchval(
                """
                INSERT INTO jobs (kind, payload, dedupe_key, run_at, priority)
                VALUES ($1, $2, $3, coalesce($4, now()), $5)
                ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL
                    AND state IN ('pending', 'running') DO NOTHING
                RETURNING id
                """,
                kind, json.dumps(payload), dedupe_key, run_at, priority,
            )
            if job_id is None:
                # Lost the race against another enqueue with the same key.
                job_id = await conn.fetchval(
                    "SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN ('pending', 'running')",
                    dedupe_key,
                )
            return job_id''', ctx="async def enqueue(", old="raise NotImplementedError  # TODO", tag="fix"),
    F("jobqueue/worker.py", "replace", r'''row = await self._pool.fetchrow(
            "SELECT id, kind, state, attempts, last_error, priority, run_at FROM jobs WHERE id = $1",
            job_id,
        )
        if row is None:
            return None
        return JobInfo(**dict(row))''', ctx="async def get(", old="raise NotImplementedError  # TODO", tag="fix"),
    F("jobqueue/worker.py", "replace", r'''loop = asyncio.get_running_loop()
        running: set[asyncio.Task] = set()
        while not self._stopping.is_set():
            free = self._config.concurrency - len(running)
            jobs = await self._claim(free) if free > 0 else []
            for job in jobs:
                task = loop.create_task(self._run_one(job))
                running.add(task)
                task.add_done_callback(running.discard)
            if not jobs:
                try:
                    await asyncio.wait_for(
                        self._stopping.wait(), self._config.poll_interval.total_seconds()
                    )
                except TimeoutError:
                    pass
        # Graceful shutdown: stop claiming, let running jobs finish, then cancel them.
        if running:
            done, pending = await asyncio.wait(
                running, timeout=self._config.shutdown_grace.total_seconds()
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)''',
      ctx="async def run(self) -> None:", old="raise NotImplementedError", tag="fix"),
    F("jobqueue/worker.py", "after", r'''
    async def _claim(self, limit: int) -> list[Job]:
        lease = self._config.lease.total_seconds()
        rows = await self._pool.fetch(
            """
            UPDATE jobs SET state = 'running', attempts = attempts + 1,
                   lease_until = now() + make_interval(secs => $2)
            WHERE id IN (
                SELECT id FROM jobs
                WHERE (state = 'pending' AND run_at <= now())
                   OR (state = 'running' AND lease_until < now())
                ORDER BY priority DESC, run_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id, kind, payload, attempts
            """,
            limit, lease,
        )
        return [Job(r["id"], r["kind"], json.loads(r["payload"]), r["attempts"]) for r in rows]''',
      anchor="self._stopping.set()"),
    F("jobqueue/worker.py", "after", r'''
    async def _run_one(self, job: Job) -> None:
        handler = self._handlers.get(job.kind)
        heartbeat = asyncio.create_task(self._extend_lease(job.id))
        try:
            if handler is None:
                raise PermanentError(f"no handler for {job.kind!r}")
            await handler(job)
        except asyncio.CancelledError:
            # Shutdown: hand the job back at once instead of waiting for the lease.
            await self._pool.execute(
                "UPDATE jobs SET state = 'pending', lease_until = NULL WHERE id = $1", job.id
            )
            raise
        except PermanentError as exc:
            await self._finish(job, "dead", repr(exc))
        except Exception as exc:  # anything else counts as transient
            if job.attempt >= self._config.max_attempts:
                await self._finish(job, "dead", repr(exc))
            else:
                delay = retry_delay(job.attempt, self._config)
                await self._pool.execute(
                    "UPDATE jobs SET state = 'pending', lease_until = NULL, last_error = $2,"
                    " run_at = now() + make_interval(secs => $3) WHERE id = $1",
                    job.id, repr(exc), delay.total_seconds(),
                )
        else:
            await self._finish(job, "succeeded", None)
        finally:
            heartbeat.cancel()''', anchor="self._stopping.set()"),
    F("jobqueue/worker.py", "after", r'''
    async def _extend_lease(self, job_id: int) -> None:
        every = self._config.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            await self._pool.execute(
                "UPDATE jobs SET lease_until = now() + make_interval(secs => $2)"
                " WHERE id = $1 AND state = 'running'",
                job_id, self._config.lease.total_seconds(),
            )

    async def _finish(self, job: Job, state: str, error: str | None) -> None:
        await self._pool.execute(
            "UPDATE jobs SET state = $2, last_error = coalesce($3, last_error),"
            " finished_at = now(), lease_until = NULL WHERE id = $1",
            job.id, state, error,
        )''', anchor="self._stopping.set()"),
    F("jobqueue/worker.py", "after", "import json", anchor="import asyncio"),
    F("tests/test_worker.py", "end", r'''class PriorityTests(unittest.IsolatedAsyncioTestCase):
    async def test_high_priority_jumps_a_flood(self):
        queue = Queue(self.pool)
        for i in range(200):
            await queue.enqueue("thumbnail", {"n": i}, priority=0)
        urgent = await queue.enqueue("virus_scan", {"doc": 1}, priority=10)
        seen = []

        async def record(job):
            seen.append(job.id)

        worker = Worker(self.pool, {"thumbnail": record, "virus_scan": record}, FAST)
        running = asyncio.create_task(worker.run())
        await wait_until(lambda: len(seen) >= 1)
        worker.stop()
        await running
        self.assertEqual(seen[0], urgent)

    async def test_dedupe_key_returns_the_live_job(self):
        queue = Queue(self.pool)
        first = await queue.enqueue("ocr", {"doc": 7}, dedupe_key="ocr:7")
        second = await queue.enqueue("ocr", {"doc": 7}, dedupe_key="ocr:7")
        self.assertEqual(first, second)'''),
    F("DESIGN.md", "new", '''# Job queue design

## Claiming

Workers claim with one `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`, ordered by priority and then `run_at`. SKIP LOCKED lets many workers claim concurrently without waiting on each other, and the partial index on pending jobs keeps the scan short even with millions of finished rows.

## Leases

A claimed job gets `lease_until = now() + 60 s`, extended every 20 s while the handler runs. A worker that dies stops extending, and the claim query also takes running jobs whose lease expired, so the job is picked up again after at most one lease.'''),
    F("DESIGN.md", "end", '''## Retries

Transient failures go back to pending with `run_at` pushed by exponential backoff with full jitter, capped at ten minutes. After `max_attempts` the job is dead and keeps its last error for operators. Permanent errors go straight to dead.

## At least once

A job can run twice: the worker may die after the handler's side effect and before it records success. Handlers must be idempotent: write the thumbnail under a key derived from the document id, use upserts, and check for the result before doing expensive work.'''),
    F("DESIGN.md", "end", '''## Shutdown

On SIGTERM the worker stops claiming, waits up to 25 s for running jobs, then cancels them. A cancelled job is handed back (`state = 'pending'`, lease cleared) so another worker takes it immediately instead of after the lease.

## What I would add

- A reaper metric for jobs whose lease expired, which means a worker died.
- Per-kind concurrency limits, so OCR cannot take all eight slots.
- Archiving finished jobs after a week to keep the table small.'''),
]

BANK["database-schema-optimization"] = [
    F("migration.sql", "end", '''-- 1. My orders: one index serves the filter, the order and the keyset pagination.
-- Built concurrently: no lock that blocks writes to orders.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_created_idx
    ON orders (customer_id, created_at DESC, id DESC)
    WHERE status <> 'cancelled';

-- 2. Merchant revenue: find a merchant's order lines without scanning all of order_items.
CREATE INDEX CONCURRENTLY IF NOT EXISTS products_merchant_idx ON products (merchant_id, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS order_items_product_idx
    ON order_items (product_id, order_id) INCLUDE (quantity, unit_price);'''),
    F("migration.sql", "end", '''-- 3. Login: an expression index that matches lower(email) = lower($1).
CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_lower_email_idx ON customers (lower(email));

-- Unused according to pg_stat_user_indexes (0 scans since the last reset): drop it.
DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;'''),
    F("migration.sql", "end", '''-- 4. Money: add exact columns next to the float ones; the application writes both during
-- the rollout, a batched backfill copies the old rows, then reads switch over.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS total_amount_cents bigint;
ALTER TABLE order_items ADD COLUMN IF NOT EXISTS unit_price_cents bigint;
ALTER TABLE products ADD COLUMN IF NOT EXISTS unit_price_cents bigint;

-- Backfill in small batches (each its own transaction, short row locks); rerunnable.
UPDATE orders SET total_amount_cents = round(total_amount * 100)::bigint
WHERE id IN (
    SELECT id FROM orders WHERE total_amount_cents IS NULL ORDER BY id LIMIT 10000
);'''),
    F("queries.sql", "range", '''PREPARE my_orders(bigint, timestamptz, bigint) AS
SELECT o.id, o.created_at, o.status, o.total_amount, o.currency,
       (SELECT count(*) FROM order_items oi WHERE oi.order_id = o.id) AS item_count
FROM orders o
WHERE o.customer_id = $1
  AND o.status <> 'cancelled'
  AND ($2::timestamptz IS NULL OR (o.created_at, o.id) < ($2, $3))
ORDER BY o.created_at DESC, o.id DESC
LIMIT 20;''', start="PREPARE my_orders(bigint, timestamptz, bigint) AS", end="LIMIT 20;", tag="fix"),
    F("queries.sql", "range", '''PREPARE merchant_revenue(bigint) AS
WITH lines AS (
    SELECT oi.order_id, oi.quantity * oi.unit_price AS amount
    FROM products p
    JOIN order_items oi ON oi.product_id = p.id
    WHERE p.merchant_id = $1
)
SELECT date_trunc('day', o.created_at AT TIME ZONE 'Europe/London') AS day,
       sum(l.amount)                                                AS revenue,
       count(DISTINCT o.id)                                         AS orders
FROM lines l
JOIN orders o ON o.id = l.order_id
WHERE o.status IN ('paid', 'shipped', 'delivered')
  AND o.created_at >= now() - interval '30 days'
GROUP BY 1
ORDER BY 1;''', start="PREPARE merchant_revenue(bigint) AS", end="ORDER BY 1;", tag="fix"),
    F("NOTES.md", "new", '''# Diagnosis

## My orders

The plan joins all of the customer's orders to their items, aggregates, sorts and only then applies the keyset condition and the limit: for a customer with 3,000 orders it reads every order and every line to return 20 rows. The index on `(customer_id, created_at DESC, id DESC)` lets the planner walk the first 20 rows in order and stop, and the line count becomes a correlated subquery run 20 times.'''),
    F("NOTES.md", "end", '''## Merchant revenue

`order_items` is scanned sequentially (31 million rows, 2.1 GB read) because nothing leads from a merchant to its lines. With the product index and a covering index on `order_items (product_id, order_id)` the query reads only the merchant's lines. The estimate for large merchants was off by 40x, so `ANALYZE` after the build matters.

## Login

`lower(email) = lower($1)` cannot use the unique index on `email`. An expression index on `lower(email)` fixes the sequential scan; longer term a `citext` column, or storing the email lowercased, is simpler.'''),
    F("NOTES.md", "end", '''## Pagination

`OFFSET 4000` reads and throws away 4,000 rows. The new query takes the `created_at` and `id` of the last row of the previous page, so page 200 is an index range scan of 20 rows, like page 1. The application has to pass the cursor instead of a page number; I would keep the old parameter working during the rollout.

## Money

The float columns lose cents. The plan: add `bigint` cents columns, write both from the application, backfill in batches of 10,000 with a pause between them, verify that the sums match, switch reads, and drop the floats in a later release. No step takes a long lock on `orders`.'''),
    F("NOTES.md", "end", '''## Write costs

Each new index costs about one extra index insert per order line. At 35 inserts/s that is negligible; the build itself is the risk, which is why every index is built `CONCURRENTLY` and the migration is rerunnable (`IF NOT EXISTS`, and an invalid index from a failed build is dropped first).'''),
]

BANK["distributed-cache-strategy"] = [
    F("catalog/catalog.go", "after", '''
// ttlFor spreads expiries so that popular keys do not all expire together.
func ttlFor(base time.Duration, r *rand.Rand) time.Duration {
    jitter := time.Duration(r.Int63n(int64(base / 5)))
    return base - base/10 + jitter
}''', anchor="const productTTL = 10 * time.Minute"),
    F("catalog/catalog.go", "after", '''
// flight is one in-progress database load that concurrent callers share.
type flight struct {
    done chan struct{}
    p    Product
    err  error
}

// loader makes sure there is at most one database load per key per instance.
type loader struct {
    mu      sync.Mutex
    flights map[string]*flight
}

func (l *loader) do(key string, fn func() (Product, error)) (Product, error) {
    l.mu.Lock()
    if f, ok := l.flights[key]; ok {
        l.mu.Unlock()
        <-f.done
        return f.p, f.err
    }
    f := &flight{done: make(chan struct{})}
    if l.flights == nil {
        l.flights = map[string]*flight{}
    }
    l.flights[key] = f
    l.mu.Unlock()

    f.p, f.err = fn()
    close(f.done)

    l.mu.Lock()
    delete(l.flights, key)
    l.mu.Unlock()
    return f.p, f.err
}''', anchor="func key(sku, country string) string"),
    F("catalog/catalog.go", "range", '''// OnPriceChanged applies a price change to the cached product, newest version wins.
func (s *Service) OnPriceChanged(ctx context.Context, ev PriceChanged) error {
    k := key(ev.SKU, ev.Country)
    raw, err := s.cache.Get(ctx, k)
    if errors.Is(err, ErrNotFound) {
        return nil // nothing cached: the next read loads the new price
    }
    if err != nil {
        return fmt.Errorf("cache: %w", err)
    }
    var p Product
    if err := json.Unmarshal(raw, &p); err != nil || p.PriceVersion >= ev.PriceVersion {
        return nil
    }
    p.PriceMinor, p.Currency, p.PriceVersion = ev.PriceMinor, ev.Currency, ev.PriceVersion
    raw, _ = json.Marshal(p)
    return s.cache.Set(ctx, k, raw, productTTL)
}''', start="// OnPriceChanged is wired to the price_changed consumer", end="return nil\n}", tag="fix"),
    F("catalog/catalog.go", "range", '''// UpdatePrice is called by the pricing back office. The write goes first; deleting the key
// before it let a reader repopulate the cache from a lagging replica with the old price.
func (s *Service) UpdatePrice(ctx context.Context, sku, country string, priceMinor int64) error {
    if _, err := s.db.UpdatePrice(ctx, sku, country, priceMinor); err != nil {
        return err
    }
    if err := s.cache.Delete(ctx, key(sku, country)); err != nil {
        s.log.Warn("cache delete failed; the price_changed event will fix it", "err", err)
    }
    return nil
}''', start="// UpdatePrice is called by the pricing back office.", end="return nil\n}", tag="fix"),
    F("catalog/catalog.go", "replace", '''raw, err := s.cache.Get(ctx, k)''', old="raw, err := s.cache.GetEx(ctx, k, productTTL)", tag="fix"),
    F("catalog/catalog.go", "replace", '''"errors"
    "fmt"
    "log/slog"
    "math/rand"
    "sync"
    "time"''', old='"errors"\n    "fmt"\n    "log/slog"\n    "time"', tag="fix"),
    F("catalog/catalog_test.go", "end", '''func TestConcurrentMissesLoadOnce(t *testing.T) {
    db := newFakeDB()
    db.put(Product{SKU: "JKT-1", Country: "DE", PriceMinor: 12900, Currency: "EUR"})
    svc := NewService(db, newFakeCache(), newFakeClock(), slog.Default())

    var wg sync.WaitGroup
    for i := 0; i < 50; i++ {
        wg.Add(1)
        go func() {
            defer wg.Done()
            if _, err := svc.GetProduct(context.Background(), "JKT-1", "DE"); err != nil {
                t.Error(err)
            }
        }()
    }
    wg.Wait()
    if got := db.loads("JKT-1", "DE"); got != 1 {
        t.Fatalf("database loads = %d, want 1", got)
    }
}'''),
    F("catalog/catalog_test.go", "end", '''func TestOldPriceEventDoesNotOverwriteNewer(t *testing.T) {
    ctx := context.Background()
    cache := newFakeCache()
    svc := NewService(newFakeDB(), cache, newFakeClock(), slog.Default())
    seed, _ := json.Marshal(Product{SKU: "TNT-2", Country: "FR", PriceMinor: 5000, PriceVersion: 7})
    _ = cache.Set(ctx, key("TNT-2", "FR"), seed, productTTL)

    _ = svc.OnPriceChanged(ctx, PriceChanged{SKU: "TNT-2", Country: "FR", PriceMinor: 4500, PriceVersion: 6})

    raw, _ := cache.Get(ctx, key("TNT-2", "FR"))
    var p Product
    _ = json.Unmarshal(raw, &p)
    if p.PriceVersion != 7 || p.PriceMinor != 5000 {
        t.Fatalf("got version %d price %d, want 7 and 5000", p.PriceVersion, p.PriceMinor)
    }
}'''),
    F("DESIGN.md", "new", '''# Catalogue caching

## Policy per kind of data

- Price: cached with the product, but every `price_changed` event updates the cached entry in place if its version is newer, so a change is visible within the consumer lag (about a second), far inside the 5 s target. The TTL is only a safety net.
- Stock: 30 s TTL with jitter, read-through.
- Titles and descriptions: 10 minutes with jitter.'''),
    F("DESIGN.md", "end", '''## The stale-forever bug

`UpdatePrice` deleted the key before writing the price. A request that missed in between read the old price from a replica that lags up to 800 ms and wrote it back; `GetEx` then pushed the expiry back on every hit, so a popular product kept the old price forever. Writing first, versioning the entry and dropping `GetEx` closes both halves.

## Stampedes and hot keys

A per-instance single-flight allows one load per key per instance: at most 24 concurrent loads of a key across the fleet. For the flash-sale SKU an in-process cache of 1 s absorbs the 40 % of traffic without touching Redis.'''),
    F("DESIGN.md", "end", '''## Failures

Redis calls get a 50 ms timeout and a circuit breaker. While Redis is down the in-process cache serves what it has (slightly stale) and loads go through the single-flight, so PostgreSQL sees at most one load per key per instance instead of the full read rate. After a shard failover comes back empty, the same protections apply.

## Capacity

About 200,000 products x 14 countries x 2 KB is 5.6 GB in Redis; the in-process cache holds the hottest 50,000 entries (100 MB) per instance.

## Metrics

Hit ratio per layer, single-flight waiters, price event lag, and an alert when the cached version of a product stays behind the database for more than 5 s.'''),
]

BANK["microservice-orchestration"] = [
    F("src/saga.ts", "before_class", '''export type SagaState =
  | "started"
  | "holding"
  | "authorizing"
  | "debiting_points"
  | "confirming"
  | "notifying"
  | "completed"
  | "compensating"
  | "failed";

export interface SagaRecord {
  checkoutId: string;
  idempotencyKey: string;
  request: CheckoutRequest;
  state: SagaState;
  holdId?: string;
  paymentId?: string;
  pointsDebited: boolean;
  bookingRef?: string;
  error?: string;
  version: number;
  updatedAt: number;
}''', anchor="/** Persisted saga state: design it to map one-to-one onto a PostgreSQL table. */"),
    F("src/saga.ts", "replace", '''get(checkoutId: string): Promise<SagaRecord | undefined>;
  findByKey(idempotencyKey: string): Promise<SagaRecord | undefined>;
  /** Inserts unless the key exists; returns the stored record either way. */
  insert(record: SagaRecord): Promise<SagaRecord>;
  /** Optimistic update: fails if the version moved on. */
  update(record: SagaRecord): Promise<void>;
  inFlight(): Promise<SagaRecord[]>;''', ctx="export interface SagaRepository {", old="// TODO", tag="fix"),
    F("src/saga.ts", "replace", '''private readonly byId = new Map<string, SagaRecord>();
  private readonly byKey = new Map<string, string>();

  async get(checkoutId: string) {
    const r = this.byId.get(checkoutId);
    return r && structuredClone(r);
  }

  async findByKey(key: string) {
    const id = this.byKey.get(key);
    return id === undefined ? undefined : this.get(id);
  }

  async insert(record: SagaRecord) {
    const existing = await this.findByKey(record.idempotencyKey);
    if (existing) return existing;
    this.byId.set(record.checkoutId, structuredClone(record));
    this.byKey.set(record.idempotencyKey, record.checkoutId);
    return record;
  }

  async update(record: SagaRecord) {
    const current = this.byId.get(record.checkoutId);
    if (!current || current.version !== record.version - 1) {
      throw new Error(`concurrent update of ${record.checkoutId}`);
    }
    this.byId.set(record.checkoutId, structuredClone(record));
  }

  async inFlight() {
    return [...this.byId.values()]
      .filter((r) => r.state !== "completed" && r.state !== "failed")
      .map((r) => structuredClone(r));
  }''', ctx="export class InMemorySagaRepository", old="// TODO", tag="fix"),
    F("src/saga.ts", "replace", '''const checkoutId = randomUUID();
    const stored = await this.repository.insert({
      checkoutId,
      idempotencyKey,
      request,
      state: "started",
      pointsDebited: false,
      version: 1,
      updatedAt: this.time.now(),
    });
    return { checkoutId: stored.checkoutId };''', ctx="async start(", old='throw new Error("not implemented");', tag="fix"),
    F("src/saga.ts", "replace", '''let saga = await this.repository.get(checkoutId);
    if (!saga) throw new Error(`unknown checkout ${checkoutId}`);
    while (saga.state !== "completed" && saga.state !== "failed") {
      saga = await this.step(saga);
    }
    return this.view(saga);''', ctx="async run(", old='throw new Error("not implemented");', tag="fix"),
    F("src/saga.ts", "replace", '''const sagas = await this.repository.inFlight();
    // Resume one by one: each step is idempotent, so repeating the last one is safe.
    for (const saga of sagas) {
      await this.run(saga.checkoutId);
    }''', ctx="async recover(", old='throw new Error("not implemented");', tag="fix"),
    F("src/saga.ts", "replace", '''const saga = await this.repository.get(checkoutId);
    return saga && this.view(saga);''', ctx="async status(", old='throw new Error("not implemented");', tag="fix"),
    F("src/saga.ts", "end", '''
async function retrying<T>(time: Time, fn: () => Promise<T>, attempts = 5): Promise<T> {
  let delay = 200;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      // Only retry what the clients document as safe to retry.
      if (!(err instanceof UnavailableError || err instanceof TimeoutError) || i >= attempts) throw err;
      await time.sleep(delay + Math.floor(Math.random() * delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}'''),
    F("test/checkout.test.ts", "end", '''test("a crash after authorizing resumes without charging twice", async () => {
  const fakes = makeFakes();
  const repository = new InMemorySagaRepository();
  fakes.payments.crashAfter("authorize");
  const first = new CheckoutOrchestrator(fakes.deps, repository, fakes.clock);
  const { checkoutId } = await first.start("key-1", sampleRequest());
  await assert.rejects(first.run(checkoutId), CrashError);

  const second = new CheckoutOrchestrator(fakes.deps, repository, fakes.clock);
  await second.recover();

  const view = await second.status(checkoutId);
  assert.equal(view?.outcome, "completed");
  assert.equal(fakes.payments.authorizations("key-1"), 1);
});'''),
    F("test/checkout.test.ts", "end", '''test("the same idempotency key returns the same checkout", async () => {
  const fakes = makeFakes();
  const orchestrator = new CheckoutOrchestrator(fakes.deps, new InMemorySagaRepository(), fakes.clock);
  const a = await orchestrator.start("same", sampleRequest());
  const b = await orchestrator.start("same", sampleRequest());
  assert.equal(a.checkoutId, b.checkoutId);
});'''),
    F("DESIGN.md", "new", '''# Checkout saga

## States

started, holding, authorizing, debiting_points, confirming (the pivot), notifying, completed; on failure before the pivot: compensating, failed. Every transition is persisted before the call that follows it, with an optimistic version, so a restarted orchestrator knows which step to repeat.

## Why this order

The hold comes first because it is free to release and fails fast when rooms are sold out. Payment is authorized, not captured, before loyalty points are debited; confirming the booking is the pivot, because some bookings become non-refundable as soon as they are confirmed. Capture happens after the pivot and is retried until it succeeds.'''),
    F("DESIGN.md", "end", '''## Idempotency

Inventory and Payments take idempotency keys derived from the checkout id and the step, so repeating a step after a crash returns the first result. Loyalty offers no key: the saga records `pointsDebited` before calling, and on recovery asks Loyalty for a debit with our reference before debiting again.

## Ambiguous outcomes

A payment timeout is treated as unknown: the saga repeats the authorization with the same key, which either returns the existing authorization or creates the only one. It never assumes failure and compensates a charge that might exist.'''),
    F("DESIGN.md", "end", '''## Expiry

Holds lapse after 15 minutes: a saga that has not reached the pivot 10 minutes after the hold compensates instead of confirming. Authorizations last 7 days, far longer than any saga.

## API

`POST /checkout` stores the saga and answers 202 with the checkout id; the same `Idempotency-Key` returns the same id. `GET /checkout/:id` returns the view. A background runner drives sagas, and `recover()` runs on start-up.'''),
]

BANK["rate-limiting"] = [
    F("internal/ratelimit/limiter.go", "end", '''// tokenBucketScript refills and takes one token atomically. KEYS[1] is the bucket;
// ARGV: rate per second, burst, now in milliseconds. Returns allowed, tokens left, ms to wait.
const tokenBucketScript = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local b = redis.call("HMGET", KEYS[1], "tokens", "ts")
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call("HSET", KEYS[1], "tokens", tokens, "ts", now)
redis.call("PEXPIRE", KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, math.floor(tokens), math.ceil((1 - tokens) * 1000 / rate)}
`'''),
    F("internal/ratelimit/limiter.go", "end", '''// TokenBucket limits per key with a bucket stored in Redis, shared by all instances.
type TokenBucket struct {
    Redis Redis
    Rate  float64 // tokens per second
    Burst int
    Now   func() time.Time
}

func (b *TokenBucket) Allow(ctx context.Context, key string) (Decision, error) {
    now := b.Now().UnixMilli()
    res, err := b.Redis.Eval(ctx, tokenBucketScript, []string{"tb:" + key}, b.Rate, b.Burst, now)
    if err != nil {
        return Decision{}, fmt.Errorf("token bucket: %w", err)
    }
    vals, ok := res.([]any)
    if !ok || len(vals) != 3 {
        return Decision{}, fmt.Errorf("token bucket: unexpected reply %v", res)
    }
    allowed := vals[0].(int64) == 1
    remaining := int(vals[1].(int64))
    wait := time.Duration(vals[2].(int64)) * time.Millisecond
    d := Decision{Allowed: allowed, Limit: b.Burst, Remaining: remaining}
    d.ResetAfter = time.Duration(float64(b.Burst-remaining)/b.Rate*1000) * time.Millisecond
    if !allowed {
        d.RetryAfter = wait
    }
    return d, nil
}'''),
    F("internal/ratelimit/limiter.go", "range", '''// ClientIP returns the address the load balancer saw: it appends that address to whatever
// the client sent, so only the last entry can be trusted.
func ClientIP(r *http.Request) string {
    if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
        parts := strings.Split(xff, ",")
        return strings.TrimSpace(parts[len(parts)-1])
    }''', start="// ClientIP returns the address of the client that sent the request.",
      end='return strings.TrimSpace(strings.Split(xff, ",")[0])\n    }', tag="fix"),
    F("internal/ratelimit/limiter.go", "replace", '''"context"
    "fmt"
    "net"''', old='"context"\n    "net"', tag="fix"),
    F("internal/ratelimit/inflight.go", "new", '''package ratelimit

import (
    "context"
    "time"
)

// InFlight caps concurrent requests per key and globally. Slots are Redis sorted-set members
// scored by their expiry, so a crashed instance's slots free themselves.
type InFlight struct {
    Redis     Redis
    PerKey    int
    Global    int
    SlotTTL   time.Duration
    Now       func() time.Time
}

const acquireScript = `
local now = tonumber(ARGV[1])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now)
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
if redis.call("ZCARD", KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[5]), ARGV[2])
redis.call("ZADD", KEYS[2], now + tonumber(ARGV[5]), ARGV[2])
return 1
`

// Acquire returns a release function, or ok=false when a limit is reached.
func (f *InFlight) Acquire(ctx context.Context, key, id string) (release func(), ok bool, err error) {
    now := f.Now().UnixMilli()
    keys := []string{"inflight:" + key, "inflight:global"}
    res, err := f.Redis.Eval(ctx, acquireScript, keys, now, id, f.PerKey, f.Global, f.SlotTTL.Milliseconds())
    if err != nil {
        return nil, false, err
    }
    if n, _ := res.(int64); n != 1 {
        return nil, false, nil
    }
    return func() {
        ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
        defer cancel()
        _, _ = f.Redis.Eval(ctx, `redis.call("ZREM", KEYS[1], ARGV[1]) redis.call("ZREM", KEYS[2], ARGV[1]) return 1`, keys, id)
    }, true, nil
}'''),
    F("cmd/api/main.go", "end", '''// limited applies a limiter to a handler and writes the budget headers.
func limited(l ratelimit.Limiter, keyOf func(*http.Request) string, failOpen bool, next http.Handler) http.Handler {
    return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
        ctx, cancel := context.WithTimeout(r.Context(), 2*time.Millisecond)
        d, err := l.Allow(ctx, keyOf(r))
        cancel()
        if err != nil {
            if failOpen {
                next.ServeHTTP(w, r)
                return
            }
            writeError(w, http.StatusServiceUnavailable, "limiter_unavailable", "try again shortly")
            return
        }
        w.Header().Set("RateLimit-Limit", strconv.Itoa(d.Limit))
        w.Header().Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
        w.Header().Set("RateLimit-Reset", strconv.Itoa(int(d.ResetAfter.Seconds()+0.5)))
        if !d.Allowed {
            w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfter.Seconds())+1))
            writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests")
            return
        }
        next.ServeHTTP(w, r)
    })
}'''),
    F("cmd/api/main_test.go", "end", '''func TestBurstThenLimited(t *testing.T) {
    srv := newTestServer(t)
    allowed := 0
    for i := 0; i < 30; i++ {
        resp := srv.get(t, "/v1/labels/L1", "key-starter")
        if resp.StatusCode == http.StatusOK {
            allowed++
        } else if resp.Header.Get("Retry-After") == "" {
            t.Fatalf("429 without Retry-After")
        }
    }
    if allowed != 20 {
        t.Fatalf("allowed %d requests, want the burst of 20", allowed)
    }
}'''),
    F("DESIGN.md", "new", '''# Rate limiting

## Algorithms

Per API key: a token bucket per plan (rate and burst from the requirements), kept in Redis and updated by one Lua script, so the six instances share one budget and a check costs one round trip (0.4 ms). Token buckets allow the documented bursts and refill smoothly, unlike fixed windows, which let a client send twice the limit across a window boundary.

For `POST /v1/rates` a concurrency limit on top: a sorted set of in-flight slots per key (20) and a global one (150), each slot with an expiry so that a crashed instance cannot leak slots.'''),
    F("DESIGN.md", "end", '''## Login protection

Two limits on `POST /v1/sessions`: per client IP (the last `X-Forwarded-For` entry, the one our load balancer appended) and per target account. The account limit does not lock the account: it slows attempts with an increasing delay and requires a CAPTCHA after a few failures, so an attacker cannot lock genuine users out. Failed logins per account and per IP are counted and alerted on, which makes stuffing visible.

What it does not stop: a slow, distributed attack that stays under both limits. Breached-password checks and 2FA are the real answer there.'''),
    F("DESIGN.md", "end", '''## When Redis fails

Every limiter call has a 2 ms budget. Reads of labels fail open (availability matters more than the limit for an idempotent read); quotes fail closed to a small local limit per instance, because the carriers throttle everyone otherwise; logins fail closed with a local per-IP limit.

## Client contract

Responses carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`; a 429 carries `Retry-After`. The limits per plan are documented, and a customer who needs more asks support, who can raise the plan's rate for that key.

## Memory

One hash of two fields per active key: about 100 bytes, so 3,800 merchants take well under a megabyte.'''),
]

BANK["rest-api-design"] = [
    F("src/problem.ts", "new", '''import type { Response } from "express";

/** RFC 9457 problem details, the one error format of /v1. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: { field: string; message: string }[];
}

export function problem(res: Response, status: number, code: string, title: string, extra: Partial<Problem> = {}) {
  res
    .status(status)
    .type("application/problem+json")
    .json({ type: `https://api.deskly.example/problems/${code}`, title, status, ...extra });
}'''),
    F("src/v1.ts", "new", '''import express from "express";
import { store } from "./store.js";
import { problem } from "./problem.js";

export const v1 = express.Router();

const PAGE_SIZE = 25;

/** Cursor pagination over spaces ordered by (createdAt, id): new spaces never shift a page. */
v1.get("/spaces", async (req, res) => {
  const { site, type, minCapacity, cursor } = req.query as Record<string, string | undefined>;
  if (type && type !== "desk" && type !== "meeting_room") {
    return problem(res, 400, "invalid-parameter", "Invalid query parameter", {
      errors: [{ field: "type", message: "must be desk or meeting_room" }],
    });
  }
  const after = cursor ? JSON.parse(Buffer.from(cursor, "base64url").toString()) : undefined;
  const spaces = (await store.listSpaces())
    .filter((s) => !site || s.siteId === site)
    .filter((s) => !type || s.type === type)
    .filter((s) => !minCapacity || s.capacity >= Number(minCapacity))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
    .filter((s) => !after || s.createdAt > after.c || (s.createdAt === after.c && s.id > after.i));
  const page = spaces.slice(0, PAGE_SIZE);
  const last = page[page.length - 1];
  const next = spaces.length > PAGE_SIZE && last
    ? Buffer.from(JSON.stringify({ c: last.createdAt, i: last.id })).toString("base64url")
    : null;
  res.json({ data: page, nextCursor: next });
});'''),
    F("src/v1.ts", "end", '''const QUARTER = 15 * 60 * 1000;

function validateRange(start: string, end: string): string | null {
  const s = Date.parse(start);
  const e = Date.parse(end);
  if (Number.isNaN(s) || Number.isNaN(e)) return "start and end must be RFC 3339 times with an offset";
  if (s % QUARTER !== 0 || e % QUARTER !== 0) return "bookings start and end on 15-minute boundaries";
  const minutes = (e - s) / 60000;
  if (minutes < 30 || minutes > 600) return "bookings last between 30 minutes and 10 hours";
  if (s < Date.now()) return "bookings may not start in the past";
  return null;
}'''),
    F("src/v1.ts", "end", '''v1.post("/bookings", async (req, res) => {
  const key = req.header("Idempotency-Key");
  const memberId = req.header("X-Member-Id");
  if (!key) return problem(res, 400, "missing-idempotency-key", "Idempotency-Key header is required");
  const replay = await store.getIdempotent(key);
  if (replay) return res.status(replay.status).json(replay.body);
  const { spaceId, start, end } = req.body ?? {};
  const invalid = validateRange(start, end);
  if (invalid) {
    return problem(res, 422, "invalid-booking", "The booking is not valid", {
      errors: [{ field: "start", message: invalid }],
    });
  }
  // The store takes a per-space lock: the overlap check and the insert are one step.
  const result = await store.bookIfFree({ spaceId, memberId: memberId ?? "", start, end });
  if (!result.ok) return problem(res, 409, "slot-taken", "The space is already booked for that time");
  await store.putIdempotent(key, { status: 201, body: result.booking });
  res.status(201).location(`/v1/bookings/${result.booking.id}`).json(result.booking);
});'''),
    F("src/v1.ts", "end", '''v1.delete("/bookings/:id", async (req, res) => {
  const booking = await store.getBooking(req.params.id);
  if (!booking) return problem(res, 404, "not-found", "No such booking");
  if (booking.status !== "cancelled") {
    await store.updateBooking({ ...booking, status: "cancelled", version: booking.version + 1 });
  }
  // Cancelling twice is harmless: same answer.
  res.status(204).end();
});'''),
    F("src/app.ts", "replace", '''app.use("/v1", v1);''', old="// TODO: mount the /v1 router here.", tag="fix"),
    F("src/app.ts", "after", '''import { v1 } from "./v1.js";''', anchor='import { store } from "./store.js";', tag="fix"),
    F("test/v1.test.ts", "end", '''test("a retried booking returns the original response", async () => {
  const body = { spaceId: "sp_lon_1", start: "2030-05-04T09:00:00+01:00", end: "2030-05-04T10:00:00+01:00" };
  const first = await request(app).post("/v1/bookings").set("Idempotency-Key", "k-1").set("X-Member-Id", "m1").send(body);
  const second = await request(app).post("/v1/bookings").set("Idempotency-Key", "k-1").set("X-Member-Id", "m1").send(body);
  assert.equal(first.status, 201);
  assert.deepEqual(second.body, first.body);
});

test("concurrent bookings of one slot: exactly one wins", async () => {
  const body = { spaceId: "sp_lon_2", start: "2030-05-04T11:00:00+01:00", end: "2030-05-04T12:00:00+01:00" };
  const results = await Promise.all(
    ["a", "b", "c"].map((k) => request(app).post("/v1/bookings").set("Idempotency-Key", k).send(body)),
  );
  assert.deepEqual(results.map((r) => r.status).sort(), [201, 409, 409]);
});'''),
    F("NOTES.md", "new", '''# Notes on /v1

## Conventions

Nouns in URLs, standard methods and status codes, `application/problem+json` for every error with field-level detail for validation. Times are RFC 3339 with an offset on the wire and compared as instants, never as strings. Lists use opaque cursors over `(createdAt, id)`, so a space added between two page requests can neither repeat nor skip a row.'''),
    F("NOTES.md", "end", '''## Idempotency

`POST /v1/bookings` requires `Idempotency-Key`. The first response is stored under the key for 24 hours and replayed for any retry; a retry with a different body gets 422. This is what stops the duplicate bookings the partners caused with their retries.

## Concurrency

The store is shared by several instances, so the overlap check and the insert must be one atomic step. In memory that is a per-space lock; on PostgreSQL I would use an exclusion constraint on `tstzrange(start, end)` per space for confirmed bookings, which makes overlapping inserts fail in the database itself.'''),
    F("NOTES.md", "end", '''## Availability

The free slots of a space on a date are computed in the site's time zone: the day runs from `opensAt` to `closesAt` local time, converted to instants with the zone's offset for that date, which handles daylight-saving days of 23 and 25 hours.

## Legacy endpoints

They stay as they are and call the same store, so a booking made through the app is visible in /v1 and the other way round. Once the app migrates they can answer 410.'''),
]


# Extra material for long sessions: more tests and more notes, from templates.
EXTRA_NOTES = [
    "## Open questions\n\n- What is the expected load in a year? The design above has headroom of about 5x; past that the hot path needs sharding.\n- Who owns the alerts? I would route them to the team that owns this service, not to a shared channel.",
    "## Testing\n\nThe unit tests cover the failure modes from the incidents. Before shipping I would add a soak test that runs for an hour with faults injected every few seconds, and compare the counters with the database at the end.",
    "## Rollout\n\nBehind a flag, first for internal accounts, then 5 % of traffic for a day while watching the error rate and latency, then everyone. The old path stays for one release so that rolling back is a flag change.",
    "## Trade-offs I made\n\nI kept the change small and close to the existing structure instead of rewriting it, because reviewers and on-call engineers know this code. The cost is some duplication that a later refactor can remove.",
]

TESTS = {
    "bug-hunt": ("python3 -m unittest discover -s tests -v", 8, 2800.0),
    "async-task-queue": ("python3 -m unittest discover -s tests -v", 7, 4200.0),
    "database-schema-optimization": ("python3 tests/run_tests.py", 6, 7000.0),
    "distributed-cache-strategy": ("go test -race ./...", 6, 11000.0),
    "microservice-orchestration": ("npm test", 5, 5200.0),
    "rate-limiting": ("go test -race ./...", 5, 10500.0),
    "rest-api-design": ("npm test", 7, 4600.0),
}
MAIN_FILE = {
    "bug-hunt": "tests/test_tickets.py", "async-task-queue": "jobqueue/worker.py",
    "database-schema-optimization": "migration.sql", "distributed-cache-strategy": "catalog/catalog.go",
    "microservice-orchestration": "src/saga.ts", "rate-limiting": "internal/ratelimit/limiter.go",
    "rest-api-design": "src/app.ts",
}
_STARTER_CACHE: dict = {}


def load_assessments():
    with open(os.path.join(CATALOGUE, "library.json"), encoding="utf-8") as fh:
        slugs = json.load(fh)
    out = {}
    for slug in slugs:
        with open(os.path.join(CATALOGUE, slug, "assessment.json"), encoding="utf-8") as fh:
            a = json.load(fh)
        files = []
        for task in a["tasks"]:
            for p in task["starter_files"]:
                with open(os.path.join(CATALOGUE, slug, "starter", p), encoding="utf-8", newline="") as fh:
                    content = fh.read()
                # positions are UTF-16 units: with BMP text only they equal Python indices
                assert len(content.encode("utf-16-le")) == 2 * len(content), f"{slug}/{p}: non-BMP text"
                files.append((p, content))
        out[slug] = {"files": files, "minutes": a.get("time_limit_minutes", 120)}
    return out


def est_presses(text: str, err: float = 0.0) -> int:
    ind = sum(len(leading_ws(line)) for line in text.split("\n"))
    shift = sum(1 for c in text if c.isupper() or c in US_SHIFTED)
    return int((len(text) - ind + 0.85 * shift + 0.3 * text.count("\n")) * (1.0 + 2.5 * err))


def locate(S: Session, frag):
    ws = S.ws
    f = frag["file"]
    op = frag["op"]
    if op == "new":
        if f not in ws.files:
            return ("new", f, 0, None, "", "\n")
        op = "end"
    text = ws.files.get(f)
    if text is None:
        return None
    if op == "end":
        if not text:
            return ("at", f, 0, None, "", "\n")
        if text.endswith("\n"):
            return ("at", f, len(text), None, "\n", "\n")
        return ("at", f, len(text), None, "\n\n", "\n")
    if op == "after":
        j = text.find(frag["anchor"])
        if j < 0:
            return None
        le = text.find("\n", j + len(frag["anchor"]))
        return ("at", f, len(text) if le < 0 else le, None, "\n", "")
    if op in ("before", "before_class"):
        j = text.find(frag["anchor"])
        if j < 0:
            return None
        ls, _ = line_bounds(text, j)
        return ("at", f, ls, None, "", "\n\n")
    if op == "replace":
        base = text.find(frag["ctx"]) if frag.get("ctx") else 0
        if base < 0:
            return None
        j = text.find(frag["old"], base)
        if j < 0:
            return None
        return ("sel", f, j, j + len(frag["old"]), "", "")
    if op == "range":
        j = text.find(frag["start"])
        k = text.find(frag["end"], j) if j >= 0 else -1
        if k < 0:
            return None
        return ("sel", f, j, k + len(frag["end"]), "", "")
    return None


def place(S: Session, loc, human_delete=False):
    """Mouse work before typing or pasting: new file, click at the spot, or select the old text."""
    drv, rng = S.drv, S.rng
    kind, f, a, b, pre, post = loc
    if kind == "new":
        drv.idle(lognorm(rng, 3500.0, 0.5))  # file tree: "New file", the name typed in a dialog
        S.rec.file_created(drv.t, f, "")
        drv.click(f, 0, move_ms=lognorm(rng, 500.0, 0.4))
    elif kind == "at":
        if not (drv.file == f and drv.pos == a and drv.anchor is None):
            drv.click(f, a)
    else:
        seg = S.ws.files[f][a:b]
        if len(seg) <= 24 and re.fullmatch(r"[A-Za-z0-9_]+", seg):
            drv.click(f, b, sel=a)  # double-click selects a word
        else:
            drv.drag_select(f, a, b)
        if human_delete:
            drv.key("Backspace", "backspace", (), None, drv.backspace)


def type_drafted(S: Session, text: str, mode: str):
    """Comments (or headings) first, then the code (or paragraphs) under each of them."""
    drv, rng = S.drv, S.rng
    lines = text.split("\n")

    def is_sec(line):
        s = line.strip()
        return bool(s) and (s.startswith("#") if mode == "prose" else s.startswith(COMMENT_PREFIXES))

    sec = [i for i, line in enumerate(lines) if is_sec(line)]
    sec = [i for k, i in enumerate(sec) if k == 0 or i != sec[k - 1] + 1]
    if len(sec) < 2 or sec[0] > 8:
        type_text(S, text, mode)
        return
    type_text(S, "\n".join(lines[:sec[0] + 1]), mode)
    marks = [S.ws.marker(drv.file, drv.pos, False)]
    bodies = []
    last_trail: list = []
    for k in range(len(sec)):
        stop = sec[k + 1] if k + 1 < len(sec) else len(lines)
        body = lines[sec[k] + 1:stop]
        lead = []
        while body and is_sec(body[0]):  # the rest of a comment block belongs to the draft
            lead.append(body.pop(0))
        trail = []
        while body and not body[-1].strip():
            trail.insert(0, body.pop())
        if lead:
            type_text(S, "\n" + "\n".join(lead), mode)
            S.ws.drop(marks[-1])
            marks[-1] = S.ws.marker(drv.file, drv.pos, False)
        bodies.append(body)
        if k + 1 < len(sec):
            type_text(S, "\n" + "\n".join(trail + [lines[sec[k + 1]]]), mode)
            marks.append(S.ws.marker(drv.file, drv.pos, False))
        else:
            last_trail = trail
    end_m = S.ws.marker(drv.file, drv.pos, True)
    for k, body in enumerate(bodies):
        if body:
            drv.click(marks[k].file, marks[k].pos, move_ms=lognorm(rng, 1200.0, 0.5))
            drv.idle(lognorm(rng, 1500.0, 0.7))
            type_text(S, "\n" + "\n".join(body), mode)
    drv.click(end_m.file, end_m.pos)
    if last_trail:
        type_text(S, "\n" * len(last_trail), mode)
    for m in marks + [end_m]:
        S.ws.drop(m)


def type_fragment(S: Session, frag, allow_draft=True) -> bool:
    loc = locate(S, frag)
    if loc is None:
        return False
    P = S.drv.p
    place(S, loc, human_delete=(loc[0] == "sel" and P.human and S.rng.random() < 0.4))
    mode = frag["mode"]
    if loc[4]:
        type_text(S, loc[4], mode)
    if allow_draft and P.drafts and loc[0] != "sel":
        type_drafted(S, frag["text"], mode)
    else:
        type_text(S, frag["text"], mode, inline=(loc[0] == "sel"))
    if loc[5]:
        type_text(S, loc[5], mode)
    return True


def apply_direct(ws: Workspace, S_like, frag) -> str | None:
    """The text a fragment adds, applied without typing (for pastes); returns what was inserted."""
    loc = locate(S_like, frag)
    if loc is None:
        return None
    kind, f, a, b, pre, post = loc
    t = pre + frag["text"] + post
    if kind == "new":
        ws.create(f, t)
    elif kind == "at":
        ws.edit(f, a, 0, t)
    else:
        ws.edit(f, a, b - a, t)
    return t


class _WsOnly:
    def __init__(self, ws):
        self.ws = ws


def reading(S: Session, med: float, lo=20e3, hi=15 * 60e3):
    rng = S.rng
    total = clamp(lognorm(rng, med, 0.6), lo, hi)
    browse(S, rng.randint(3, 14), total)


def browse(S: Session, n: int, total_ms: float):
    drv, rng = S.drv, S.rng
    files = list(S.ws.files)
    for _ in range(max(1, n)):
        f = rng.choice(files)
        text = S.ws.files[f]
        pos = line_bounds(text, rng.randint(0, len(text)))[0] if text else 0
        drv.click(f, pos, move_ms=total_ms / max(1, n) * rng.uniform(0.4, 1.6))
        if rng.random() < 0.15 and text:
            m = re.search(r"[A-Za-z_][A-Za-z0-9_]{3,}", text[pos:pos + 200])
            if m:
                drv.click(f, pos + m.end(), move_ms=lognorm(rng, 400.0, 0.4), sel=pos + m.start())


def focus_away(S: Session, dur: float, via_keys=None, click_back=None):
    drv, rng = S.drv, S.rng
    drv.release_all()
    if via_keys is None:
        via_keys = rng.random() < 0.5
    if via_keys:
        m = "Meta" if drv.layout.os == "mac" else "Alt"
        drv.key(m, "modifier", (), {"pause": lognorm(rng, 400.0, 0.5)}, None, no_up=True)
        t = drv.t + lognorm(rng, 90.0, 0.4)
    else:
        t = drv.t + lognorm(rng, 600.0, 0.5)
    S.rec.focus_lost(t)
    drv.t = t + dur
    drv.keyed = False
    S.rec.focus_regained(drv.t)
    if click_back is None:
        click_back = not via_keys or rng.random() < 0.3
    if click_back and drv.file is not None:
        drv.click(drv.file, min(drv.pos, len(S.ws.files[drv.file])))


def take_break(S: Session, dur: float, lose_focus: bool):
    drv, rng = S.drv, S.rng
    drv.release_all()
    t0 = drv.t + lognorm(rng, 2000.0, 0.5)
    if lose_focus:
        S.rec.focus_lost(t0)
    a = t0 + rng.uniform(1e3, 6e3)
    b = t0 + dur - rng.uniform(2e3, 8e3)
    if b > a:
        S.face.add(a, b, "absent")
    drv.t = t0 + dur
    drv.keyed = False
    if lose_focus:
        S.rec.focus_regained(drv.t)
        if drv.file is not None:
            drv.click(drv.file, drv.pos)


def reload_page(S: Session):
    drv, rng = S.drv, S.rng
    drv.release_all()
    t = drv.t + lognorm(rng, 800.0, 0.5)
    S.rec.focus_lost(t)  # pagehide: the document becomes hidden
    t_new = t + rng.uniform(800.0, 4000.0)
    b = S.rec.b
    frac = rng.randrange(int(round(1 / b.res))) * b.res if b.res < 1 else b.frac
    S.rec.reload(t_new, frac)
    drv.t = t_new + rng.uniform(1500.0, 6000.0)
    drv.keyed = False
    S.reloaded = True
    if drv.file is not None:
        drv.click(drv.file, min(drv.pos, len(S.ws.files[drv.file])))


def run_tests(S: Session, final=False, depth=0):
    drv, rng = S.drv, S.rng
    cmd, total, dur_med = TESTS[S.assessment]
    drv.idle(lognorm(rng, 1200.0, 0.5))
    dur = lognorm(rng, dur_med, 0.3)
    total += getattr(S, "extra_tests", 0)
    pend = [x for x in S.pending if x["trigger"] == "run"]
    lang = lang_of(MAIN_FILE[S.assessment])
    if not final and S.progress < 0.7 and not pend and rng.random() < 0.12:
        exit_code = 2 if lang in ("go", "ts") else 1
        passed = failed = None
    else:
        frac = min(1.0, S.progress * rng.uniform(0.8, 1.08))
        failed = total - int(round(total * frac))
        if pend:
            failed = max(failed, rng.randint(1, 2))
        failed = int(clamp(failed, 0, total))
        passed = total - failed
        exit_code = 0 if failed == 0 else 1
    S.rec.code_run(drv.t + dur, cmd, exit_code, passed, failed, dur)
    drv.t += dur
    drv.idle(lognorm(rng, 5000.0, 0.7))
    S.runs += 1
    if pend and drv.p.human and depth < 2:
        for item in pend:
            S.pending.remove(item)
            drv.idle(lognorm(rng, 9000.0, 0.7))
            go_back_and_insert(S, item)
        run_tests(S, final, depth + 1)


# =============================================================================================
# People: parameters of the honest model, per profile
# =============================================================================================


def human_params(rng: random.Random, profile: str) -> dict:
    u = rng.uniform
    P = dict(
        iki=u(150, 215), sigma=u(0.28, 0.40), idio=u(0.06, 0.14), min_gap=22.0,
        punct_f=u(1.0, 1.35), digit_f=u(1.0, 1.3), hold=u(85, 118), hold_sig=u(0.17, 0.27),
        mod_lead=u(70, 130), mod_cost=u(35, 80), mod_tail=u(5, 45), shift_hold=u(0.5, 0.95),
        word_med=u(60, 150), word_sig=0.6, p_mid=0.03, mid_med=260.0,
        line_med=u(1000, 2600), line_sig=u(0.8, 1.0), p_long=u(0.03, 0.08), long_med=u(6000, 20000),
        p_tok_think=u(0.01, 0.04), tok_think=u(1200, 3000),
        react=u(300, 480), react_idle=u(350, 600), stay=u(0.85, 0.95), drift_sd=0.035,
        fatigue=u(0.0, 0.08), prose_f=u(1.0, 1.3),
        err_rate=u(0.014, 0.034), notice=u(0.4, 1.4), late=u(0.05, 0.15),
        p_wrong_word=u(0.01, 0.03), p_delay_ins=u(0.02, 0.06), p_retype=u(0.005, 0.02),
        p_autocomplete=u(0.0, 0.15), p_copy=u(0.0, 0.25), p_hold_bs=u(0.1, 0.5), p_ctrl_bs=u(0.0, 0.5),
        p_undo=u(0.0, 0.15), p_bug=u(0.005, 0.02),
        think_med=u(150e3, 500e3), read_med=u(300e3, 900e3), p_run=u(0.25, 0.6), p_away=u(0.1, 0.35),
        p_break=u(0.02, 0.06), p_reload=0.0, layout="us",
    )
    if profile == "fast":
        P.update(iki=u(92, 135), sigma=u(0.24, 0.34), hold=u(72, 100), word_med=u(40, 100),
                 line_med=u(600, 1500), err_rate=u(0.02, 0.035), notice=u(0.2, 0.8), mod_lead=u(50, 90),
                 think_med=u(100e3, 350e3), react=u(250, 380))
    elif profile == "slow":
        P.update(hunt=True, hunt_a=u(160, 260), hunt_b=u(50, 110), search=u(150, 400), sigma=u(0.30, 0.45),
                 iki=300.0, hold=u(110, 170), word_med=u(120, 350), line_med=u(1500, 3500),
                 err_rate=u(0.01, 0.025), notice=u(0.0, 0.4), late=u(0.2, 0.4), p_hold_bs=u(0.0, 0.1),
                 shift_hold=0.9, mod_lead=u(120, 260), p_ctrl_bs=0.0, p_autocomplete=u(0.0, 0.05))
    elif profile == "non_native":
        P.update(iki=u(160, 240), prose_f=u(1.5, 2.3), err_rate=u(0.018, 0.035), word_med=u(80, 180),
                 line_med=u(1200, 3000), p_wrong_word=u(0.02, 0.05),
                 layout=wchoice(rng, [("de", 4), ("fr", 2), ("us_intl", 3), ("us", 1)]))
    elif profile == "comment_drafter":
        P.update(drafts=True, line_med=u(1100, 2400))
    elif profile == "short_task":
        P.update(read_med=u(600e3, 1500e3), think_med=u(240e3, 720e3), p_run=u(0.5, 0.9))
    elif profile == "long_task":
        if rng.random() < 0.5:
            P.update(iki=u(100, 150), hold=u(75, 105), word_med=u(45, 110), line_med=u(700, 1700))
        P.update(fatigue=u(0.05, 0.15), think_med=u(90e3, 300e3))
    elif profile == "distracted":
        P.update(p_away=u(0.4, 0.7), p_break=u(0.15, 0.3), p_reload=u(0.2, 0.5))
    P["dead_keys"] = P["layout"] in ("de", "fr", "us_intl")
    return P


HONEST_PROFILES = [
    # profile, key-press budget range
    ("typical", (600, 1700)), ("fast", (1100, 2800)), ("slow", (350, 1000)),
    ("non_native", (500, 1500)), ("comment_drafter", (600, 1800)), ("short_task", (300, 590)),
    ("long_task", (3600, 5600)), ("distracted", (500, 1500)),
]


def adversary_budget(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.25:
        return rng.randint(320, 590)
    if r < 0.85:
        return rng.randint(600, 1400)
    return rng.randint(1400, 3600)


# =============================================================================================
# Plans: which fragments a session types, in which order
# =============================================================================================


SYNONYMS = {
    "fresh": ["latest", "new_table", "table"], "inserted": ["created", "added", "was_new"],
    "balance": ["remaining", "new_balance", "left"], "errors": ["failures", "errs", "problems"],
    "threads": ["workers", "pool"], "evening": ["late", "dusk"], "exp": ["backoff", "raw"],
    "capped": ["bounded", "limited"], "existing": ["found", "current"], "running": ["active", "in_flight"],
    "free": ["slots", "room"], "handler": ["fn", "run_fn"], "heartbeat": ["keepalive", "extender"],
    "delay": ["wait", "backoff"], "every": ["interval", "period"], "rows": ["records", "claimed"],
    "seen": ["order", "handled"], "urgent": ["important", "high"], "first": ["a", "one"],
    "second": ["b", "two"], "jitter": ["spread", "extra"], "allowed": ["ok", "granted"],
    "remaining": ["left", "budget"], "wait": ["retryIn", "waitFor"], "vals": ["parts", "reply"],
    "keys": ["redisKeys", "ks"], "stored": ["saved", "record"], "sagas": ["pending", "open"],
    "saga": ["s", "current"], "body": ["payload", "input"], "replay": ["cached", "previous"],
    "result": ["outcome", "res"], "booking": ["b", "created"], "spaces": ["matches", "list"],
    "page": ["items", "slice"], "after": ["from", "cursorPos"], "invalid": ["problemText", "reason"],
    "minutes": ["mins", "length"], "svc": ["service", "s"], "cache": ["store", "c"], "raw": ["data", "buf"],
    "conn": ["c", "connection"], "row": ["r", "record"], "invoice_id": ["inv_id", "iid"],
    "local_today": ["today", "local_date"], "now": ["current", "at"], "lines": ["items", "ls"],
}
PROTECTED = set("err ctx res req self db key keys now id ok t r s k a b i n e p f l c d v w x y".split())


def _split_strings(line: str):
    """Pieces of a code line, each (text, is_string)."""
    out = []
    for m in re.finditer(r'("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)|([^"\'`]+|["\'`])', line):
        out.append((m.group(0), m.group(1) is not None))
    return out


def session_bank(slug: str, rng: random.Random, starter_words: set):
    """The assessment's fragments as this person would write them: their own names for local
    variables, some comments left out, shorter notes. Two candidates never hand in the same text."""
    frags = BANK[slug]
    code = "\n".join(f["text"] for f in frags if f["mode"] == "code")
    cands = []
    for m in re.finditer(r"(?:^|[\s(,])([a-z][A-Za-z0-9_]{2,})\s*(?:,\s*[a-z][A-Za-z0-9_]*\s*)*(?::=|=(?!=)|\bin\b)", code):
        cands.append(m.group(1))
    for m in re.finditer(r"\b(?:const|let|var)\s+([a-z][A-Za-z0-9_]{2,})", code):
        cands.append(m.group(1))
    renames = {}
    taken = set(starter_words) | set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    for name in dict.fromkeys(cands):
        if name in starter_words or name in KEYWORDS or name in PROTECTED or rng.random() < 0.45:
            continue
        opts = SYNONYMS.get(name)
        if not opts:
            continue
        new = rng.choice(opts)
        if "_" in name or name.islower():
            new = re.sub(r"([a-z])([A-Z])", lambda m: m.group(1) + "_" + m.group(2).lower(), new)
        if new in taken or new in renames.values():
            continue
        renames[name] = new
    word_re = re.compile(r"\b(" + "|".join(map(re.escape, renames)) + r")\b") if renames else None
    drop_c = rng.uniform(0.0, 0.35)
    drop_s = rng.uniform(0.0, 0.3)
    out = []
    for f in frags:
        text = f["text"]
        if f["mode"] == "code":
            lines = []
            for line in text.split("\n"):
                s = line.strip()
                if s.startswith(COMMENT_PREFIXES) and rng.random() < drop_c and len(text.split("\n")) > 3:
                    continue
                if word_re is not None:
                    line = "".join(p if is_str else word_re.sub(lambda m: renames[m.group(1)], p)
                                   for p, is_str in _split_strings(line))
                lines.append(line)
            text = "\n".join(lines)
        else:
            lines = []
            for line in text.split("\n"):
                if line and not line.startswith(("#", "-", "|")):
                    sents = re.split(r"(?<=[.!?]) (?=[A-Z`])", line)
                    keep = [sents[0]] + [x for x in sents[1:] if rng.random() >= drop_s]
                    line = " ".join(keep)
                lines.append(line)
            text = "\n".join(lines)
        if text.strip():
            out.append(dict(f, text=text))
    return out


def make_plan(rng: random.Random, slug: str, target: int, order: str = "human", err: float = 0.0,
              fixes_first=False, modes=("code", "prose"), bank=None):
    frags = [f for f in (bank or BANK[slug]) if f["mode"] in modes]
    if order == "human":
        code = [f for f in frags if f["mode"] == "code"]
        prose = [f for f in frags if f["mode"] == "prose"]
        frags = prose + code if rng.random() < 0.25 else code + prose
        for _ in range(3):
            i = rng.randrange(len(frags) - 1) if len(frags) > 1 else 0
            if len(frags) > 1 and frags[i]["file"] != frags[i + 1]["file"]:
                frags[i], frags[i + 1] = frags[i + 1], frags[i]
    if fixes_first:
        frags = [f for f in frags if f.get("tag") == "fix"] + [f for f in frags if f.get("tag") != "fix"]
    if "prose" in modes:
        prose_file = next(f["file"] for f in BANK[slug] if f["mode"] == "prose")
        notes = list(EXTRA_NOTES)
        rng.shuffle(notes)
        for note in notes:
            frags.append(F(prose_file, "new", note))
    plan, est, truncated = [], 0, False
    for f in frags:
        e = est_presses(f["text"], err)
        if est + e <= target:
            plan.append(f)
            est += e
        elif not truncated and f["op"] not in ("replace", "range") and target - est > 60:
            lines = f["text"].split("\n")
            keep = []
            for line in lines:
                if est + est_presses("\n".join(keep + [line]), err) > target:
                    break
                keep.append(line)
            while keep and not keep[-1].strip():
                keep.pop()
            if keep:
                plan.append(dict(f, text="\n".join(keep)))
                est += est_presses("\n".join(keep), err)
            truncated = True
        if est >= target * 0.97:
            break
    return plan, est


# =============================================================================================
# Scripted timers (the bots' delay rules)
# =============================================================================================


class RuleTimer(Scripted):
    def __init__(self, rng, gap, hold, sends_mods=True, mod_gap=(0.05, 0.3), mod_extra=0.5,
                 start=(250.0, 2500.0), err_rate=0.0, notice=0.0, on_tok=None):
        super().__init__(rng, sends_mods, mod_gap, mod_extra)
        self._gap = gap
        self._hold = hold
        self.start = start
        self.err_rate = err_rate
        self.notice = notice
        self._on_tok = on_tok
        self.state: dict = {}

    def draw_gap(self, drv, key, kc, ann):
        return self._gap(self, drv, key, kc, ann or {})

    def draw_hold(self, key, kc):
        return self._hold(self, kc)

    def on_token(self, drv, ann):
        if self._on_tok is not None:
            self._on_tok(self, ann)

    def chord(self, drv, key, kc, new_mods, ann, ref):
        ann = ann or {}
        g = self.draw_gap(drv, key, kc, ann) + ann.get("pause", 0.0)
        if not drv.keyed:
            g += self.rng.uniform(*self.start)
        tm = []
        t0 = ref + g
        for m in new_mods:
            tm.append((t0, None))
            t0 += self.mod_gap(self.rng) if callable(self.mod_gap) else self.rng.uniform(*self.mod_gap)
        t_down = max(t0, drv.t + 0.05)
        return tm, t_down, self.draw_hold(key, kc)


def _after_enter(drv) -> bool:
    return drv.last_key == "Enter"


def _word_start(drv, key) -> bool:
    return drv.last_key in (" ", "Enter", "Tab") and len(key) == 1 and key.isalnum()


def constant_timer(rng, variant):
    if variant == "puppeteer_fixed_delay":
        D = rng.choice([30.0, 50.0, 75.0, 100.0, 120.0, 150.0])
        o0 = rng.uniform(0.6, 2.5)
        h0 = rng.uniform(0.4, 1.8)
        return RuleTimer(rng, lambda T, d, k, c, a: D + o0 + T.rng.gauss(0, 0.06),
                         lambda T, c: max(0.05, h0 + T.rng.gauss(0, 0.04)), sends_mods=False), \
            {"device": ("inject", 0.02), "label": f"D={D:g}ms"}
    if variant == "pyautogui_interval":
        interval = rng.choice([50.0, 80.0, 100.0, 120.0, 200.0])
        return RuleTimer(rng, lambda T, d, k, c, a: interval + abs(T.rng.gauss(0.09, 0.05)) + 0.15,
                         lambda T, c: T.rng.uniform(0.03, 0.25), sends_mods=True, mod_gap=(0.02, 0.12),
                         mod_extra=0.05), {"device": ("inject", 0.03)}
    if variant == "ahk_windows_sleep":
        tick = 15.625
        D = rng.choice([40.0, 50.0, 70.0, 100.0])
        PD = rng.choice([10.0, 20.0])
        gap_q = math.ceil((D + 0.3) / tick) * tick
        hold_q = math.ceil(PD / tick) * tick
        return RuleTimer(rng, lambda T, d, k, c, a: gap_q + T.rng.gauss(0, 0.3),
                         lambda T, c: max(0.1, hold_q + T.rng.gauss(0, 0.3)), sends_mods=True,
                         mod_gap=lambda r: hold_q + r.gauss(0, 0.3), mod_extra=0.3), \
            {"device": ("inject", 0.1), "os": "windows"}
    # fixed interval, fixed pause after every newline
    D = rng.choice([60.0, 90.0, 120.0])
    L = rng.choice([600.0, 1000.0, 1500.0])
    h = rng.uniform(20.0, 60.0)
    return RuleTimer(rng, lambda T, d, k, c, a: D + (L if _after_enter(d) else 0.0) + T.rng.gauss(0, 0.05),
                     lambda T, c: h, sends_mods=True, mod_gap=(8.0, 8.5), mod_extra=4.0), \
        {"device": ("inject", 0.05)}


def uniform_timer(rng, variant):
    if variant == "uniform_narrow_cdp":
        lo = rng.uniform(60, 110)
        w = rng.uniform(30, 70)
        return RuleTimer(rng, lambda T, d, k, c, a: T.rng.uniform(lo, lo + w),
                         lambda T, c: T.rng.uniform(15, 45), sends_mods=False), {"device": ("inject", 0.03)}
    if variant == "uniform_wide_os":
        return RuleTimer(rng, lambda T, d, k, c, a: T.rng.uniform(40, 320),
                         lambda T, c: T.rng.uniform(50, 150), sends_mods=True, mod_gap=(5, 40)), \
            {"device": ("inject", 0.1)}
    if variant == "uniform_word_line_pauses":
        def gap(T, d, k, c, a):
            g = T.rng.uniform(60, 200)
            if _after_enter(d):
                g += T.rng.uniform(800, 4000)
            elif _word_start(d, k):
                g += T.rng.uniform(200, 900)
            return g
        return RuleTimer(rng, gap, lambda T, c: T.rng.uniform(60, 130), sends_mods=True, mod_gap=(10, 60)), \
            {"device": ("inject", 0.1)}
    return RuleTimer(rng, lambda T, d, k, c, a: T.rng.uniform(40, 160),
                     lambda T, c: T.rng.uniform(60, 220), sends_mods=True, mod_gap=(20, 80)), \
        {"device": ("inject", 0.1)}


def iid_timer(rng, variant):
    if variant == "lognormal_iid":
        med = rng.uniform(140, 220)
        sig = rng.uniform(0.35, 0.55)
        hm = rng.uniform(80, 110)
        return RuleTimer(rng, lambda T, d, k, c, a: lognorm(T.rng, med, sig), lambda T, c: lognorm(T.rng, hm, 0.25),
                         sends_mods=True, mod_gap=lambda r: lognorm(r, 70.0, 0.4)), {"device": ("inject", 0.1)}
    if variant == "exgauss_gamma":
        mu, sd, tau = rng.uniform(110, 160), rng.uniform(20, 40), rng.uniform(60, 140)
        hm = rng.uniform(85, 115)
        return RuleTimer(rng, lambda T, d, k, c, a: max(15.0, T.rng.gauss(mu, sd) + T.rng.expovariate(1.0 / tau)),
                         lambda T, c: T.rng.gammavariate(9.0, hm / 9.0), sends_mods=True,
                         mod_gap=lambda r: max(10.0, r.gauss(80.0, 25.0))), {"device": ("inject", 0.1)}
    if variant == "heavy_tail_mixture":
        def gap(T, d, k, c, a):
            r = T.rng.random()
            if r < 0.86:
                return lognorm(T.rng, 160.0, 0.38)
            if r < 0.97:
                return lognorm(T.rng, 650.0, 0.5)
            return lognorm(T.rng, 3500.0, 0.8)
        return RuleTimer(rng, gap, lambda T, c: lognorm(T.rng, 98.0, 0.24), sends_mods=True,
                         mod_gap=lambda r: lognorm(r, 85.0, 0.35)), {"device": ("inject", 0.1)}
    table = {"letter": (150, 0.35), "whitespace": (230, 0.5), "punctuation": (260, 0.45), "digit": (220, 0.4),
             "enter": (900, 0.8), "backspace": (120, 0.3), "navigation": (200, 0.4)}
    holds = {"letter": 95, "whitespace": 105, "enter": 110, "punctuation": 100}
    return RuleTimer(rng, lambda T, d, k, c, a: lognorm(T.rng, *table.get(c, (180, 0.4))),
                     lambda T, c: lognorm(T.rng, holds.get(c, 95), 0.22), sends_mods=True,
                     mod_gap=lambda r: lognorm(r, 75.0, 0.35)), {"device": ("inject", 0.1)}


def humanize_lib_timer(rng):
    mu = rng.uniform(90, 160)
    sd = mu * 0.35

    def gap(T, d, k, c, a):
        g = max(25.0, T.rng.gauss(mu, sd)) * (0.6 if T.state.get("burst") else 1.0)
        if T.rng.random() < 0.04:
            g += T.rng.uniform(300, 1500)
        if "fix" in a:
            g += T.rng.uniform(150, 450)
        return g

    def on_tok(T, ann):
        T.state["burst"] = T.rng.random() < 0.15

    return RuleTimer(rng, gap, lambda T, c: clamp(T.rng.gauss(95, 18), 40, 160), sends_mods=True,
                     mod_gap=(1.0, 5.0), err_rate=0.03, notice=0.0, on_tok=on_tok)


# =============================================================================================
# Sessions: set-up, flows per class, output
# =============================================================================================


def setup(seed, sid, slug, attempt, A, typist, *, browser=None, os_name=None, device=("usb", None),
          layout="us", world_kw=None, started_ms=None):
    rng = rng_for(seed, sid, attempt, "main")
    srng = rng_for(seed, sid, "start")
    if started_ms is None:
        day = srng.randint(0, 104)
        started_ms = int((datetime(2026, 9, 1, tzinfo=timezone.utc) - EPOCH).total_seconds() * 1000) \
            + day * 86400000 + srng.randint(6 * 3600, 21 * 3600) * 1000
    b = browser if isinstance(browser, Browser) else pick_browser(rng_for(seed, sid, attempt, "br"), browser, os_name)
    lay = Layout(layout, b.os)
    ws = Workspace(A[slug]["files"])
    model = wchoice(rng_for(seed, sid, attempt, "fm"), list(zip(FACE_MODELS, FACE_WEIGHTS)))
    horizon = (A[slug]["minutes"] + 90) * 60e3
    world = FaceWorld(rng_for(seed, sid, attempt, "face"), model, horizon, **(world_kw or {}))
    sched = FaceSchedule(rng_for(seed, sid, attempt, "fs"), world, 0.0)
    page0 = started_ms + rng.uniform(600.0, 4000.0)
    rec = Recorder(ws, b, started_ms, page0, rng_for(seed, sid, attempt, "rec"), sched)
    kind, jit = device
    dev = Device(rng_for(seed, sid, attempt, "dev"), kind, jitter=jit)
    drv = Driver(rec, typist, lay, dev, rng_for(seed, sid, attempt, "drv"))
    drv.t = rng.uniform(300.0, 1500.0)
    S = Session(rng, drv, ws, rec, slug, world)
    S.reloaded = False
    S.extra_tests = 0
    S.started_ms = started_ms
    S.browser = b
    S.limit_ms = A[slug]["minutes"] * 60e3
    vocab = {}
    for _, content in A[slug]["files"]:
        for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_]{3,}", content):
            vocab[m.group(0)] = 1
    S.vocab = list(vocab)
    words = set()
    for _, content in A[slug]["files"]:
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", content))
    S.bank = session_bank(slug, rng_for(seed, sid, "bank"), words)
    return S


def new_human(seed, sid, role, profile, P=None):
    r = rng_for(seed, sid, "person", role)
    if P is None:
        P = human_params(r, profile)
    return Human(rng_for(seed, sid, "typing", role), P, f"{seed}:{sid}:{role}")


def between_fragments(S, P: dict, allow_reload=True):
    drv, rng = S.drv, S.rng
    think = clamp(lognorm(rng, P["think_med"], 0.8), 2e3, 12 * 60e3)
    if drv.t > 0.6 * S.limit_ms:  # the clock is running out: less deliberation
        think *= 0.25
    if rng.random() < 0.55:
        browse(S, rng.randint(1, 4), think * 0.6)
        think *= 0.4
    if rng.random() < P["p_away"]:
        focus_away(S, clamp(lognorm(rng, 25e3, 1.0), 3e3, 5 * 60e3))
    if rng.random() < P["p_break"]:
        take_break(S, clamp(lognorm(rng, 5 * 60e3, 0.5), 90e3, 20 * 60e3), rng.random() < 0.6)
    if allow_reload and not S.reloaded and rng.random() < P.get("p_reload", 0.0):
        reload_page(S)
    drv.idle(think)


def flow_honest(S, person: Human, plan, swap=None):
    """An honest candidate: reads, thinks, types with slips and revisions, runs tests, takes breaks.
    `swap` (index, callback) hands the keyboard to someone else before fragment `index`."""
    drv, rng = S.drv, S.rng
    P = person.P
    reading(S, P["read_med"])
    n = len(plan)
    for k, frag in enumerate(plan):
        if swap is not None and k == swap[0]:
            person = swap[1](S)
            P = person.P
        if k > 0:
            between_fragments(S, P)
        if rng.random() < P.get("p_ext_paste", 0.03):
            ext_paste(S)
        type_fragment(S, frag)
        S.progress = (k + 1) / n
        if rng.random() < P["p_run"] or any(x["trigger"] == "run" for x in S.pending):
            run_tests(S)
    if swap is not None and n <= swap[0]:
        swap[1](S)
    if rng.random() < 0.85:
        run_tests(S, final=True)
    browse(S, rng.randint(1, 5), lognorm(rng, 40e3, 0.6))


def ext_paste(S):
    """Copies a short string from the prompt panel (outside the editor) and pastes it."""
    drv, rng = S.drv, S.rng
    if drv.file is None:
        return
    snippet = rng.choice(["Retry-After", "X-Forwarded-For", "application/problem+json", "Idempotency-Key",
                          "price_changed", "pg_stat_statements", "SUP-1190", "INC-2291", "FOR UPDATE SKIP LOCKED"])
    text = S.ws.files[drv.file]
    pos = drv.pos if drv.pos <= len(text) else len(text)
    drv.idle(lognorm(rng, 3000.0, 0.5))
    drv.click(drv.file, pos)
    drv.key("v", "letter", (drv.layout.shortcut,), None, lambda: drv.paste(snippet))
    # and takes it out again: it was only to have it at hand
    drv.idle(lognorm(rng, 2500.0, 0.6))
    n = len(snippet)
    drv.drag_select(drv.file, drv.pos - n, drv.pos)
    drv.key("Backspace", "backspace", (), None, drv.backspace)


def finish(S, tail_ms=None):
    drv, rng = S.drv, S.rng
    drv.release_all()
    end = drv.t + (tail_ms if tail_ms is not None else lognorm(rng, 30e3, 0.6))
    S.rec.finish(end)
    return end


def pairs_of(events):
    """(gap, hold) of every key press, as a replay tool records them from a session."""
    out = []
    prev = None
    for _, _, d in events:
        if d["type"] != "keystroke":
            continue
        down = d["down_ms"]
        gap = 400.0 if prev is None else down - prev
        prev = down
        up = d.get("up_ms")
        out.append((gap, None if up is None else up - down))
    return out


# ---- the classes ---------------------------------------------------------------------------

def gen_honest(seed, sid, profile, slug, attempt, A, scale=1.0):
    r = rng_for(seed, sid, "plan", attempt)
    budget = dict(HONEST_PROFILES)[profile]
    target = int(r.randint(*budget) * scale)
    person = new_human(seed, sid, "a", profile)
    P = person.P
    world_kw = {}
    if profile == "distracted":
        world_kw = dict(bad_light_rate=0.7, passer_rate=0.05, glance_rate=0.1)
    S = setup(seed, sid, slug, attempt, A, person, layout=P["layout"], world_kw=world_kw)
    plan, _ = make_plan(r, slug, int(target / 1.08), "human", P["err_rate"], fixes_first=(profile == "short_task"), bank=S.bank)
    flow_honest(S, person, plan)
    finish(S)
    return S, None


def acquire_solution(S, p_focus=0.6):
    """The cheater gets the solution from elsewhere (another window, a phone, a friend)."""
    rng = S.rng
    if rng.random() < p_focus:
        focus_away(S, clamp(lognorm(rng, 200e3, 0.7), 20e3, 30 * 60e3))
    else:
        S.drv.idle(clamp(lognorm(rng, 150e3, 0.8), 10e3, 30 * 60e3))


def gen_bot(seed, sid, cls, variant, slug, attempt, A, scale=1.0):
    r = rng_for(seed, sid, "plan", attempt)
    target = int(adversary_budget(r) * scale)
    trng = rng_for(seed, sid, "timer", attempt)
    factory = {"constant_interval": constant_timer, "uniform_jitter": uniform_timer, "iid_human_like": iid_timer}[cls]
    timer, opts = factory(trng, variant)
    operator = new_human(seed, sid, "operator", "typical")
    S = setup(seed, sid, slug, attempt, A, operator, os_name=opts.get("os"), device=opts["device"])
    plan, _ = make_plan(r, slug, target, "linear", bank=S.bank)
    drv, rng = S.drv, S.rng
    reading(S, lognorm(rng, 60e3, 0.8), lo=5e3, hi=6 * 60e3)
    acquire_solution(S)
    for k, frag in enumerate(plan):
        drv.p = operator
        if k > 0:
            drv.idle(lognorm(rng, 6e3, 0.9))
        loc = locate(S, frag)
        if loc is None:
            continue
        place(S, loc)
        drv.p = timer
        for j, part in enumerate((loc[4], frag["text"], loc[5])):
            if part:
                type_text(S, part, frag["mode"], inline=(j == 1 and loc[0] == "sel"))
        S.progress = (k + 1) / len(plan)
    drv.p = operator
    if rng.random() < 0.6:
        run_tests(S, final=True)
    finish(S)
    return S, None


def gen_humanized(seed, sid, variant, slug, attempt, A, scale=1.0):
    r = rng_for(seed, sid, "plan", attempt)
    target = int(adversary_budget(r) * scale)
    operator = new_human(seed, sid, "operator", "typical")
    if variant == "humanize_lib":
        bot = humanize_lib_timer(rng_for(seed, sid, "timer", attempt))
    else:
        pr = rng_for(seed, sid, "botparams", attempt)
        P = human_params(pr, "typical")
        P["layout"] = "us"
        P["dead_keys"] = False
        if variant == "digraph_markov":
            P.update(idio=0.0, flat=True, p_wrong_word=0.0, p_delay_ins=0.0, p_retype=0.0, p_autocomplete=0.0,
                     p_copy=0.0, p_undo=0.0, p_bug=0.0, p_ctrl_bs=0.0, err_rate=pr.uniform(0.015, 0.03),
                     notice=pr.uniform(0.3, 1.2), late=0.05, fatigue=0.0)
        elif variant == "cognitive_sim":
            P.update(idio=pr.uniform(0.02, 0.1))
        elif variant == "llm_agent_chunks":
            P.update(copy=True, glance=pr.uniform(120, 300), idio=0.03, p_wrong_word=0.0, p_delay_ins=0.0,
                     p_retype=0.0, p_autocomplete=0.0, p_copy=0.0, p_bug=pr.uniform(0.02, 0.05),
                     err_rate=pr.uniform(0.01, 0.02))
        bot = Human(rng_for(seed, sid, "bottyping", attempt), P, f"{seed}:{sid}:bot")
    S = setup(seed, sid, slug, attempt, A, operator, device=("inject", 0.08), layout="us")
    drv, rng = S.drv, S.rng
    if variant == "cognitive_sim":
        plan, _ = make_plan(r, slug, int(target / 1.08), "human", bot.P["err_rate"], bank=S.bank)
        drv.p = bot
        flow_honest(S, bot, plan)
        finish(S)
        return S, None
    plan, _ = make_plan(r, slug, target, "linear", 0.02, bank=S.bank)
    if variant == "llm_agent_chunks":
        def chunk_hook(S2, li, lines, state={"left": 0}):
            state["left"] -= 1
            if state["left"] <= 0:
                ahead = "\n".join(lines[li:li + 4])
                S2.drv.idle(1500.0 + 35.0 * len(ahead) * math.exp(S2.rng.gauss(0, 0.4)))
                state["left"] = S2.rng.randint(2, 6)
        S.chunk_hook = chunk_hook
    reading(S, lognorm(rng, 90e3, 0.7), lo=10e3, hi=8 * 60e3)
    acquire_solution(S, 0.4)
    for k, frag in enumerate(plan):
        drv.p = operator
        if k > 0:
            drv.idle(lognorm(rng, 12e3, 0.9))
        loc = locate(S, frag)
        if loc is None:
            continue
        place(S, loc)
        drv.p = bot
        for j, part in enumerate((loc[4], frag["text"], loc[5])):
            if part:
                type_text(S, part, frag["mode"], inline=(j == 1 and loc[0] == "sel"))
        S.progress = (k + 1) / len(plan)
        drv.p = operator
        if variant != "humanize_lib" and (rng.random() < 0.3 or any(x["trigger"] == "run" for x in S.pending)):
            drv.p = bot
            run_tests(S)
            drv.p = operator
    drv.p = bot
    run_tests(S, final=True)
    finish(S)
    return S, None


def gen_transcription(seed, sid, variant, slug, attempt, A, scale=1.0):
    r = rng_for(seed, sid, "plan", attempt)
    target = int(adversary_budget(r) * scale)
    pr = rng_for(seed, sid, "person", attempt)
    P = human_params(pr, wchoice(pr, [("typical", 3), ("fast", 2)]))
    P.update(copy=True, glance=pr.uniform(300, 800), p_wrong_word=0.0, p_delay_ins=0.0, p_retype=0.0,
             p_autocomplete=0.0, p_copy=0.0, p_bug=0.0, p_undo=0.0, err_rate=P["err_rate"] * 0.8,
             stay=0.97, p_reload=0.0, p_break=0.0, p_away=0.0)
    if variant in ("planned_pauses", "fake_revisions"):
        P["fake_plan"] = True
    if variant == "fake_revisions":
        P.update(p_wrong_word=pr.uniform(0.01, 0.03), p_delay_ins=pr.uniform(0.02, 0.05),
                 p_bug=pr.uniform(0.01, 0.02), p_retype=0.01)
    person = Human(rng_for(seed, sid, "typing", attempt), P, f"{seed}:{sid}:t")
    S = setup(seed, sid, slug, attempt, A, person, layout=P["layout"])
    drv, rng = S.drv, S.rng
    order = "human" if variant == "fake_revisions" else "linear"
    plan, _ = make_plan(r, slug, int(target / 1.05), order, P["err_rate"], bank=S.bank)
    if variant == "alt_tab_source":
        def hook(S2):
            if S2.rng.random() < 0.3:
                focus_away(S2, lognorm(S2.rng, 3500.0, 0.5), via_keys=True, click_back=False)
        S.line_hook = hook
    read = 40e3 if variant in ("steady_copytyping", "alt_tab_source") else 150e3
    reading(S, read, lo=5e3)
    acquire_solution(S, 0.5 if variant in ("steady_copytyping", "alt_tab_source") else 0.2)
    for k, frag in enumerate(plan):
        if k > 0:
            if variant in ("planned_pauses", "fake_revisions"):
                drv.idle(clamp(lognorm(rng, 30e3, 0.8), 3e3, 5 * 60e3))
                if rng.random() < 0.4:
                    browse(S, rng.randint(1, 3), lognorm(rng, 15e3, 0.5))
            else:
                drv.idle(lognorm(rng, 2500.0, 0.6))
        type_fragment(S, frag, allow_draft=False)
        S.progress = (k + 1) / len(plan)
        if variant == "fake_revisions" and (rng.random() < 0.35 or any(x["trigger"] == "run" for x in S.pending)):
            run_tests(S)
    if variant != "steady_copytyping" or rng.random() < 0.5:
        run_tests(S, final=True)
    finish(S)
    return S, None


def gen_whole_paste(seed, sid, variant, slug, attempt, A, scale=1.0):
    r = rng_for(seed, sid, "plan", attempt)
    person = new_human(seed, sid, "a", "typical")
    P = person.P
    S = setup(seed, sid, slug, attempt, A, person, layout=P["layout"])
    drv, rng = S.drv, S.rng
    code = [f for f in S.bank if f["mode"] == "code"]
    prose_plan, _ = make_plan(r, slug, int(r.randint(360, 1100) * scale), "linear", P["err_rate"], modes=("prose",), bank=S.bank)
    reading(S, lognorm(rng, 120e3, 0.6), lo=10e3)
    if variant != "single_paste":
        acquire_solution(S, 0.3)
    sc = drv.layout.shortcut

    def ctrl_v(text, scripted=None):
        if scripted is not None:
            drv.p = scripted
        drv.key("v", "letter", (sc,), None, lambda: drv.paste(text))
        drv.p = person

    if variant == "single_paste":
        # the whole solved main file, over the starter (select all, paste)
        f = MAIN_FILE[slug]
        scratch = Workspace([(p, c) for p, c in S.ws.files.items()])
        for frag in code:
            if frag["file"] == f:
                apply_direct(scratch, _WsOnly(scratch), frag)
        focus_away(S, lognorm(rng, 40e3, 0.8), click_back=True)
        drv.click(f, 0)
        drv.key("a", "letter", (sc,), None, lambda: (setattr(drv, "anchor", 0), setattr(drv, "pos", len(S.ws.files[f])),
                                                      S.rec.cursor(drv._te(), f, len(S.ws.files[f]), 0)))
        ctrl_v(scratch.files[f])
    else:
        pieces_per = {"few_large_pastes": (1, 1), "chopped_small_pastes": (2, 7), "clipboard_chunk_typer": (0, 0)}[variant]
        frags = code if variant != "few_large_pastes" else code[: r.randint(2, 5)]
        scripted = None
        if variant == "clipboard_chunk_typer":
            scripted = RuleTimer(rng_for(seed, sid, "clip"), lambda T, d, k, c, a: T.rng.uniform(30, 90),
                                 lambda T, c: T.rng.uniform(60, 110), sends_mods=True, mod_gap=(25, 60))
        for k, frag in enumerate(frags):
            loc = locate(S, frag)
            if loc is None:
                continue
            drv.idle(lognorm(rng, 20e3 if variant != "clipboard_chunk_typer" else 5e3, 0.8))
            place(S, loc)
            text = loc[4] + frag["text"] + loc[5]
            if variant == "few_large_pastes":
                focus_away(S, lognorm(rng, 30e3, 0.8), click_back=False)
                if rng.random() < 0.25:  # dragged in from the other window
                    drv.t += lognorm(rng, 900.0, 0.4)
                    S.rec.edit(drv.t, drv.file, drv.pos if drv.anchor is None else min(drv.pos, drv.anchor),
                               0 if drv.anchor is None else abs(drv.pos - drv.anchor), text, "drop")
                    drv.pos = (drv.pos if drv.anchor is None else min(drv.pos, drv.anchor)) + len(text)
                    drv.anchor = None
                else:
                    ctrl_v(text)
            elif variant == "chopped_small_pastes":
                lines = text.split("\n")
                i = 0
                while i < len(lines):
                    n = rng.randint(*pieces_per)
                    piece = "\n".join(lines[i:i + n]) + ("\n" if i + n < len(lines) else "")
                    i += n
                    if piece:
                        ctrl_v(piece)
                        drv.idle(clamp(lognorm(rng, 250.0 * max(1, len(piece)) ** 0.8, 0.5), 1500, 90e3))
            else:  # clipboard_chunk_typer: a helper puts 8-40 characters at a time on the clipboard
                i = 0
                while i < len(text):
                    n = rng.randint(8, 40)
                    piece = text[i:i + n]
                    i += n
                    ctrl_v(piece, scripted)
                    drv.idle(len(piece) * lognorm(rng, 190.0, 0.25) + (lognorm(rng, 900.0, 0.6) if "\n" in piece else 0))
            S.progress = (k + 1) / max(1, len(frags))
    # the candidate types the written part themselves
    for frag in prose_plan:
        drv.idle(lognorm(rng, 20e3, 0.8))
        type_fragment(S, frag, allow_draft=False)
    if rng.random() < 0.8:
        run_tests(S, final=True)
    finish(S)
    return S, None


def gen_face_swap(seed, sid, variant, slug, attempt, A, scale=1.0):
    r = rng_for(seed, sid, "plan", attempt)
    prof_a = wchoice(r, [("typical", 4), ("fast", 2), ("slow", 1), ("non_native", 1)])
    target = int(r.randint(700, 2600) * scale)
    a = new_human(seed, sid, "a", prof_a)
    S = setup(seed, sid, slug, attempt, A, a, layout=a.P["layout"])
    m = S.face.m
    plan, _ = make_plan(r, slug, int(target / 1.08), "human", a.P["err_rate"], bank=S.bank)
    k_swap = max(1, int(len(plan) * r.uniform(0.3, 0.7)))

    def swap(S2):
        drv, rng = S2.drv, S2.rng
        pr = rng_for(seed, sid, "person", "b")
        if variant == "break_lookalike":
            Pb = dict(a.P)
            for key in ("iki", "hold", "word_med", "line_med", "mod_lead", "sigma"):
                Pb[key] = a.P[key] * pr.uniform(0.88, 1.12)
        else:
            Pb = human_params(pr, wchoice(pr, [("typical", 3), ("fast", 3), ("slow", 1)]))
        Pb["layout"] = a.P["layout"]
        Pb["dead_keys"] = a.P["dead_keys"]
        b = Human(rng_for(seed, sid, "typing", "b"), Pb, f"{seed}:{sid}:b")
        w = S2.face
        if variant == "naive_swap":
            t0 = drv.t + 5e3
            w.add(t0, t0 + rng.uniform(10e3, 40e3), "two")
            w.add(t0 + 40e3, INF, "impostor", mu=m.imp_mu + rng.gauss(0, 0.6 * m.imp_sd))
            drv.idle(rng.uniform(45e3, 90e3))
        elif variant == "break_lookalike":
            dur = rng.uniform(3, 10) * 60e3
            t0 = drv.t
            w.add(t0 + dur * 0.5, INF, "impostor", mu=m.imp_mu + rng.uniform(2.2, 2.9) * m.imp_sd,
                  sd=0.7 * m.gen_sd)
            take_break(S2, dur, True)
        elif variant == "photo_of_candidate":
            t0 = drv.t + rng.uniform(10e3, 30e3)
            w.add(t0, INF, "photo", mu=m.gen_mu + w.person_offset - rng.uniform(0.02, 0.08), sd=0.006,
                  q=rng.uniform(0.5, 0.7))
            w.add(drv.t, t0, "absent")
            drv.idle(rng.uniform(40e3, 120e3))
        else:  # deepfake_virtual_camera
            t0 = drv.t + rng.uniform(20e3, 60e3)
            w.add(drv.t, t0, "absent")
            w.add(t0, INF, "deepfake", mu=m.gen_mu + w.person_offset - rng.uniform(0.1, 0.22), sd=0.05,
                  q=rng.uniform(0.55, 0.75), loss=0.05)
            drv.idle(rng.uniform(60e3, 150e3))
        drv.p = b
        drv.keyed = False
        return b

    flow_honest(S, a, plan, swap=(k_swap, swap))
    finish(S)
    return S, None


def gen_replay(seed, sid, variant, slug, attempt, A, sources, scale=1.0):
    """sources: list of (id, pairs, browser) of honest sessions."""
    r = rng_for(seed, sid, "plan", attempt)
    cands = [s for s in sources if len(s["pairs"]) >= 450 and s["assessment"] != slug]
    if not cands:
        cands = [s for s in sources if len(s["pairs"]) >= 450] or sources
    if not cands:
        raise RuntimeError("replayed_timing needs honest sessions to replay")
    src = r.choice(cands)
    pairs = list(src["pairs"])
    source_id = src["id"]
    browser = None
    timer_kw = {}
    dev = ("inject", 0.0)
    if variant == "replay_exact":
        browser = Browser(src["browser"].name, src["browser"].res, src["browser"].os, src["browser"].frac)
        unit = browser.res * (3 if abs(browser.res - 1000.0 / 60.0) < 1e-6 else 1)
        timer_kw = dict(align=(unit, src["down0"] - browser.frac))
    elif variant == "replay_other_browser":
        browser = None
        dev = ("inject", 0.05)
    elif variant == "replay_jittered_scaled":
        timer_kw = dict(jitter=r.uniform(1.0, 4.0), scale=r.uniform(0.93, 1.07), hold_jitter=r.uniform(0.5, 3.0))
        dev = ("inject", 0.1)
    else:  # replay_stitched: the first part from one session, the rest from another
        others = [s for s in sources if s["id"] != source_id and len(s["pairs"]) >= 300] or sources
        src2 = r.choice(others)
        na = int(len(pairs) * r.uniform(0.4, 0.7))
        nb = len(src2["pairs"])
        stitched = pairs[:na] + [(lognorm(r, 4000.0, 0.6), src2["pairs"][0][1])] + src2["pairs"][1:]
        if nb > na:
            source_id = src2["id"]
        pairs = stitched
        dev = ("inject", 0.05)
    timer = ReplayTimer(rng_for(seed, sid, "replay"), pairs, **timer_kw)
    operator = new_human(seed, sid, "operator", "typical")
    S = setup(seed, sid, slug, attempt, A, operator, browser=browser, device=dev)
    drv, rng = S.drv, S.rng
    main = MAIN_FILE[slug]
    ext = main.rsplit(".", 1)[-1]
    frags = [f for f in S.bank if f["op"] in ("end", "after", "new", "before", "before_class")
             and f["file"].endswith("." + ext)]
    budget = int(min(len(pairs) * 0.95, 6000) * scale)
    texts, est = [], 0
    for f in frags:
        e = est_presses(f["text"])
        if est + e > budget and texts:
            break
        texts.append(f["text"])
        est += e
    text = "\n\n".join(texts)
    reading(S, lognorm(rng, 60e3, 0.8), lo=5e3, hi=6 * 60e3)
    acquire_solution(S, 0.5)
    loc = locate(S, F(main, "end", "x"))
    place(S, loc)
    drv.p = timer
    try:
        type_text(S, loc[4] + text + loc[5], "code")
    except Exhausted:
        pass
    drv.p = operator
    if rng.random() < 0.5:
        run_tests(S, final=True)
    finish(S)
    S.source_id = source_id
    return S, source_id


# =============================================================================================
# Corpus
# =============================================================================================

VARIANTS = {
    "constant_interval": ["puppeteer_fixed_delay", "pyautogui_interval", "ahk_windows_sleep", "fixed_with_newline_pause"],
    "uniform_jitter": ["uniform_narrow_cdp", "uniform_wide_os", "uniform_word_line_pauses", "uniform_with_rollover"],
    "iid_human_like": ["lognormal_iid", "exgauss_gamma", "heavy_tail_mixture", "per_class_iid"],
    "humanized_bot": ["humanize_lib", "digraph_markov", "cognitive_sim", "llm_agent_chunks"],
    "replayed_timing": ["replay_exact", "replay_other_browser", "replay_jittered_scaled", "replay_stitched"],
    "whole_paste": ["single_paste", "few_large_pastes", "chopped_small_pastes", "clipboard_chunk_typer"],
    "transcription": ["steady_copytyping", "alt_tab_source", "planned_pauses", "fake_revisions"],
    "face_swap": ["naive_swap", "break_lookalike", "photo_of_candidate", "deepfake_virtual_camera"],
}
CLASS_ORDER = ["honest", "constant_interval", "uniform_jitter", "iid_human_like", "humanized_bot",
               "replayed_timing", "whole_paste", "transcription", "face_swap"]


def serialize(S, sid, cls, profile, slug, source, A) -> str:
    events = []
    for seq, ts, d in S.rec.events:
        if d["type"] == "keystroke":
            dd = {"type": "keystroke", "down_ms": d["down_ms"]}
            if "up_ms" in d:
                dd["up_ms"] = d["up_ms"]
            dd["key_class"] = d["key_class"]
            d = dd
        events.append({"seq": seq, "ts": iso_ms(ts), "data": d})
    rec = {
        "id": sid, "class": cls, "profile": profile, "assessment": slug, "source": source,
        "consent": {"keystroke_dynamics": True, "face_continuity": True},
        "started_at": iso_s(S.started_ms),
        "starter_files": [{"path": p, "content": c} for p, c in A[slug]["files"]],
        "events": events,
    }
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


def generate_one(seed, sid, cls, profile, slug, A, sources):
    """Generates a session within the key-press limits (300..6000), adjusting the length if needed."""
    scale = 1.0
    for attempt in range(8):
        if cls == "honest":
            S, src = gen_honest(seed, sid, profile, slug, attempt, A, scale)
        elif cls in ("constant_interval", "uniform_jitter", "iid_human_like"):
            S, src = gen_bot(seed, sid, cls, profile, slug, attempt, A, scale)
        elif cls == "humanized_bot":
            S, src = gen_humanized(seed, sid, profile, slug, attempt, A, scale)
        elif cls == "transcription":
            S, src = gen_transcription(seed, sid, profile, slug, attempt, A, scale)
        elif cls == "whole_paste":
            S, src = gen_whole_paste(seed, sid, profile, slug, attempt, A, scale)
        elif cls == "face_swap":
            S, src = gen_face_swap(seed, sid, profile, slug, attempt, A, scale)
        elif cls == "replayed_timing":
            S, src = gen_replay(seed, sid, profile, slug, attempt, A, sources, scale)
        else:
            raise ValueError(cls)
        n = S.rec.n_keys
        if 300 <= n <= 6000:
            return S, src
        scale *= (5400.0 / n) if n > 6000 else max(1.25, 380.0 / max(n, 1))
    raise RuntimeError(f"{sid}: could not fit the key-press limits (last {n})")


def calibration(seed):
    out = []
    for m in FACE_MODELS:
        r = rng_for(seed, "face-calibration", m.id)
        gen = []
        for _ in range(400):
            s = r.gauss(m.gen_mu, m.gen_sd)
            if r.random() < 0.15:
                s -= r.uniform(0.0, 0.15)  # a worse pair: glasses, age gap, light
            gen.append(round(clamp(s, 0.0, 1.0), 4))
        imp = []
        for _ in range(400):
            s = r.gauss(m.imp_mu, m.imp_sd)
            if r.random() < 0.05:
                s += r.uniform(0.5, 1.8) * m.imp_sd  # similar-looking pairs
            imp.append(round(clamp(s, 0.0, 1.0), 4))
        out.append({"model_id": m.id, "model_version": m.version, "genuine": gen, "impostor": imp})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="g3 red-team session generator")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.time()
    A = load_assessments()
    slugs = list(A)
    os.makedirs(args.out, exist_ok=True)
    k = args.per_class
    jobs = []
    for i in range(4 * k):
        jobs.append(("honest", HONEST_PROFILES[i % len(HONEST_PROFILES)][0], i))
    for cls in CLASS_ORDER[1:]:
        for i in range(k):
            jobs.append((cls, VARIANTS[cls][i % len(VARIANTS[cls])], i))
    sources = []
    used_models = set()
    path = os.path.join(args.out, "sessions.jsonl")
    counts: dict = {}
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for cls, profile, i in jobs:
            sid = f"{GEN}-{cls.replace('_', '-')}-{i + 1:04d}"
            slug = slugs[rng_for(args.seed, sid, "assessment").randrange(len(slugs))]
            S, src = generate_one(args.seed, sid, cls, profile, slug, A, sources)
            out.write(serialize(S, sid, cls, profile, slug, src, A) + "\n")
            used_models.add(S.face.m.id)
            if cls == "honest" and not S.reloaded:
                sources.append({"id": sid, "pairs": pairs_of(S.rec.events), "browser": S.browser,
                                "assessment": slug,
                                "down0": next(d["down_ms"] for _, _, d in S.rec.events if d["type"] == "keystroke")})
            counts[cls] = counts.get(cls, 0) + 1
    cal = [c for c in calibration(args.seed) if c["model_id"] in used_models]
    with open(os.path.join(args.out, "face_models.json"), "w", encoding="utf-8", newline="\n") as fh:
        json.dump(cal, fh, separators=(",", ":"))
        fh.write("\n")
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as src_readme, \
            open(os.path.join(args.out, "README.md"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(src_readme.read())
    if not args.quiet:
        size = os.path.getsize(path)
        print(f"wrote {sum(counts.values())} sessions ({', '.join(f'{c} {n}' for c, n in counts.items())}), "
              f"{size / 1e6:.1f} MB in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
