#!/usr/bin/env python3
"""Chooses what a long fuzzing run adds to the committed corpus: the inputs that add the most
coverage to the seeds, at most K of them (a full `cargo fuzz cmin` keeps hundreds to thousands).

    python3 fuzz/pick_corpus.py <target> <found-corpus-dir> [K=40]

run from the repository root after `cargo fuzz build --sanitizer none --debug-assertions`. It
merges the seeds (fuzz/corpus/<target>/seed-*: the generated seeds and kept crash inputs) and the
found inputs with libFuzzer's `-merge=1` in a scratch directory to get each input's coverage edges
(the merge control file), then picks greedily: each time the input adding the most edges not yet
covered (ties: the smaller one), and copies the picks into fuzz/corpus/<target>/ under their SHA-1
names. Existing non-seed files there are replaced.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile


def main() -> None:
    target, found = sys.argv[1], sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    corpus = os.path.join("fuzz", "corpus", target)
    binary = os.path.join("fuzz", "target", "x86_64-unknown-linux-gnu", "release", target)
    with tempfile.TemporaryDirectory() as scratch:
        seeds = os.path.join(scratch, "seeds")
        os.mkdir(seeds)
        for seed in glob.glob(os.path.join(corpus, "seed-*")):
            shutil.copy(seed, seeds)
        control = os.path.join(scratch, "control")
        subprocess.run(
            [binary, "-merge=1", f"-merge_control_file={control}", seeds, found],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        picked = pick(control, k)
        for path in glob.glob(os.path.join(corpus, "*")):
            if not os.path.basename(path).startswith("seed-"):
                os.remove(path)
        for path in picked:
            shutil.copy(path, corpus)


def pick(control: str, k: int) -> list:
    """The merge control file lists the files (the first corpus first), then `COV <i> <edges>`."""
    lines = open(control).read().split("\n")
    n, first = int(lines[0]), int(lines[1])
    files = lines[2 : 2 + n]
    cov = {}
    for line in lines[2 + n :]:
        if line.startswith("COV "):
            parts = line.split()
            cov[int(parts[1])] = set(parts[2:])
    covered = set().union(*(cov.get(i, set()) for i in range(first)))
    seeds = len(covered)
    candidates = {i for i in range(first, n) if i in cov}
    picked = []
    while len(picked) < k and candidates:
        best = max(
            candidates,
            key=lambda i: (len(cov[i] - covered), -os.path.getsize(files[i])),
        )
        if not cov[best] - covered:
            break
        covered |= cov[best]
        candidates.discard(best)
        picked.append(files[best])
    total = len(set().union(*cov.values())) if cov else 0
    print(
        f"seeds cover {seeds} edges; with {len(picked)} picked inputs {len(covered)}"
        f" of the {total} all inputs cover"
    )
    return picked


if __name__ == "__main__":
    main()
