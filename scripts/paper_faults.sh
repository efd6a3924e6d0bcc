#!/usr/bin/env bash
# Manual reliability check of `make paper` at the quick scale (a few minutes; not part of CI):
#  1. a reference `make paper` in a fresh clone,
#  2. `make paper` killed (SIGKILL to its whole process group) while notebook 02 trains, then rerun,
#  3. two `make paper` started at once in the same clone.
# Each clone runs notebooks 01-03 with their quick-scale defaults and its own results folder;
# the figures and tables of 2 and 3 must equal the reference's (wall-clock timing tables aside).
# Usage: KGBIAS_MIRROR=/path/to/data scripts/paper_faults.sh [work folder]
set -u
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
WORK=${1:-$(mktemp -d)}
VENV=$ROOT/.venv
STAMP=$VENV/.kgbias-installed
export OMP_NUM_THREADS=1

setup() {
    rm -rf "$1"; git clone -q "$ROOT" "$1"
    rm -f "$1"/params/paper/04_*.yaml
    for f in "$1"/params/paper/0[123]_*.yaml; do echo "figures_dir: ../figures" > "$f"; done
    rm -rf "$1/figures"; mkdir "$1/figures"
}
run_make() { (cd "$1" && KGBIAS_RESULTS="$1/results" make -s -o "$STAMP" VENV="$VENV" paper > "$2" 2>&1); }
digests() { (cd "$1/figures" && sha256sum $(ls | grep -v _seconds) | sort -k2); }

setup "$WORK/reference"; run_make "$WORK/reference" "$WORK/reference.log"; echo "reference: rc=$?"

setup "$WORK/killed"
# setsid: make and everything it starts form one process group, killed together as Ctrl-C would
KGBIAS_RESULTS="$WORK/killed/results" setsid make -s -C "$WORK/killed" -o "$STAMP" VENV="$VENV" paper \
    > "$WORK/killed-1.log" 2>&1 & pid=$!
for _ in $(seq 1 600); do ls "$WORK"/killed/results/*/checkpoint.pt > /dev/null 2>&1 && break; sleep 0.2; done
sleep 1; kill -9 -- "-$pid"; wait $pid 2> /dev/null
echo "killed while: $(grep '^\[paper\]' "$WORK/killed-1.log" | tail -1)"
run_make "$WORK/killed" "$WORK/killed-2.log"; echo "rerun after the kill: rc=$?"

setup "$WORK/concurrent"
run_make "$WORK/concurrent" "$WORK/concurrent-1.log" & a=$!
run_make "$WORK/concurrent" "$WORK/concurrent-2.log" & b=$!
wait $a; ra=$?; wait $b; echo "two concurrent runs: rc=$ra,$?"

status=0
for case in killed concurrent; do
    if diff <(digests "$WORK/reference") <(digests "$WORK/$case") > /dev/null; then
        echo "$case: $(digests "$WORK/reference" | wc -l) figures and tables identical to the reference"
    else
        echo "$case: DIFFERENT"; diff <(digests "$WORK/reference") <(digests "$WORK/$case"); status=1
    fi
done
exit $status
