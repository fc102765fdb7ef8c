#!/usr/bin/env bash
# Lay out, on the CPU side, what benchmarks/gpu.sh needs on a GPU machine (which has no ../shared and no network),
# in the git-ignored folders that the device call carries:
#   benchmarks/gpu_prepare.sh GIT_DIR
# GIT_DIR: the paper's repository as a git directory (the `fetch` tool with
# github:taesungp/contrastive-unpaired-translation prints one); ../shared/tools/official/README.md says more.
# Writes:
#   .gpu_inputs/photo_greatWallofChina.jpg, painting_bazille_the_ramparts_at_aigues_mortes.jpg
#               (../shared/data/samples_candidates: part 3's second pair)
#   .gpu_inputs/official/cut/   the paper's checkout at its HEAD (the GIFs under imgs/ left out), with
#                               ../shared/tools/official/setup.sh's one change (harmless on a GPU)
#   .gpu_inputs/official/bench.sh, bench_driver.py   ../shared/tools/official's, unchanged
#   .whl/   wheels the GPU image lacks, for its Python 3.12: kornia 0.9.0 and kornia_rs 0.2.0 (ours), dominate
#           2.9.1 (the paper's train.py; torchvision is on the image)
# Then the call (about 8 minutes; at most 64 MiB travels, this adds about 12):
#   run(command="bash benchmarks/gpu.sh", carry=[".gpu_inputs", ".whl"], timeout_s=540)
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] || [ $# -ne 1 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  [ $# -eq 1 ] && exit 0 || exit 2
fi
GIT_DIR_IN="$1"
cd "$(dirname "$0")/.."
SHARED="${SINCUT_SHARED:-../shared}"
mkdir -p .gpu_inputs/official .whl
cp "$SHARED/data/samples_candidates/photo_greatWallofChina.jpg" \
   "$SHARED/data/samples_candidates/painting_bazille_the_ramparts_at_aigues_mortes.jpg" .gpu_inputs/
cp "$SHARED/tools/official/bench.sh" "$SHARED/tools/official/bench_driver.py" .gpu_inputs/official/
CUT=.gpu_inputs/official/cut
if [ ! -f "$CUT/train.py" ]; then
  rm -rf "$CUT"
  git clone -q --no-checkout "$GIT_DIR_IN" "$CUT"
  git -C "$CUT" ls-tree -r --name-only HEAD | grep -v '\.gif$' | xargs -d '\n' git -C "$CUT" checkout HEAD --
  rm -rf "$CUT/.git"  # the checkout travels as files
fi
sed -i 's/torch.ones(batch, 1, in_channel, 1, 1).cuda()/torch.ones(batch, 1, in_channel, 1, 1, device=input.device)/' \
  "$CUT/models/stylegan_networks.py"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl kornia==0.9.0 kornia_rs==0.2.0 dominate==2.9.1
du -sh .gpu_inputs .whl
echo "ready: run(command=\"bash benchmarks/gpu.sh\", carry=[\".gpu_inputs\", \".whl\"], timeout_s=540)"
