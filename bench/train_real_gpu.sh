#!/usr/bin/env bash
# Every bundled class and the size comparison trained at once on one GPU, as one command that a time limit
# may cut: bench/train_real.py per run, side by side (the cpu-micro U-Net is too small to fill a GPU alone),
# the newest judged snapshot of each class and every learning curve copied to OUT as the runs go.
#
#     bash bench/train_real_gpu.sh data/real OUT [MINUTES]     # MINUTES of training per run (default 6)
#     WORK=/tmp/work bash bench/train_real_gpu.sh ...            # run folders elsewhere (default OUT/work)
#
# Runs (each its own folder under OUT/work, its own learning_curve.csv):
#   kick, snare, hat, perc   fine-tuned from the bundled model, batch 64, lr 1e-4 (hat: +-1.5 and 3 semitone
#                            copies of its 12 training recordings)
#   snare-micro, snare-small from scratch at two sizes (cpu-micro 2.9 M, cpu-small 6.1 M), batch 64, lr 2e-4
set -u
corpus=$1 out=$2 minutes=${3:-6}
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-$out/work}
mkdir -p "$work/logs"
common=(--batch 64 --minutes "$minutes" --steps 100000 --judge-every ${JUDGE_EVERY:-250} --judge-count ${JUDGE_COUNT:-16})

run() {  # NAME ARGS...: one bench/train_real.py in the background, its output in work/logs/NAME.log
    local name=$1; shift
    PYTHONUNBUFFERED=1 python3 "$here/train_real.py" "$corpus" "$work/$name" "${common[@]}" "$@" \
        >"$work/logs/$name.log" 2>&1 &
}
run kick --classes kick --lr 1e-4
run snare --classes snare --lr 1e-4
run hat --classes hat --lr 1e-4 --tune hat=-3,-1.5,1.5,3
run perc --classes perc --lr 1e-4
run snare-micro --classes snare --lr 2e-4 --from-scratch --preset cpu-micro
run snare-small --classes snare --lr 2e-4 --from-scratch --preset cpu-small

sync_out() {  # the newest snapshot of each shipped class, and the curves and logs in one archive
    for c in kick snare hat perc; do
        newest=$(ls "$work/$c/$c/snapshots/"*.safetensors 2>/dev/null | tail -n 1)
        [ -n "$newest" ] && cp "$newest" "$out/.$c.tmp" && mv "$out/.$c.tmp" "$out/$c.safetensors"
    done
    (cd "$work" && tar czf "$out/.curves.tmp" logs */learning_curve.csv */*/train.log 2>/dev/null)
    mv "$out/.curves.tmp" "$out/curves.tgz"
}
while [ -n "$(jobs -r)" ]; do
    sleep 30
    sync_out
    tail -q -n 1 "$work"/logs/*.log
done
sync_out
grep -h "step .*called" "$work"/logs/*.log
