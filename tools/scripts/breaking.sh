#!/usr/bin/env bash
# buf breaking of proto/ against a git ref (default main). The ref's tree
# lacks proto/third_party (downloaded by make, not committed), so it is
# checked out beside the repository with this tree's copy added.
set -euo pipefail
ref=${1:-main}
buf=${BUF:?BUF is the buf command}
root=$(git rev-parse --show-toplevel)
base=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$base/tree" >/dev/null 2>&1 || true; rm -rf "$base"' EXIT
git -C "$root" worktree add --detach --quiet "$base/tree" "$ref"
cp -r "$root/proto/third_party" "$base/tree/proto/"
cd "$root/proto"
$buf breaking --against "$base/tree/proto"
echo "buf breaking: no breaking change against $ref"
