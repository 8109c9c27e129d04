#!/usr/bin/env bash
# Proves deploy/Dockerfile's build context is complete, without Docker:
# copies exactly the paths the build stage's COPY lines name (read from the
# Dockerfile, never listed twice) into an empty directory and runs the
# image's own build command there, offline, from the already-fetched cargo
# registry. A file the build reads but the COPY lines miss (an include_str!
# of a locale or a stylesheet, a target Cargo.toml declares) fails it.
#
# The directory is always the same path (emptied first), so the release
# target directory beside it ($CG_CONTEXT_TARGET, default
# ~/.cache/caseguard-context-target) keeps the compiled dependencies between
# runs: only caseguard itself is compiled again. Delete either at any time.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKERFILE="${1:-deploy/Dockerfile}"
CONTEXT="${CG_CONTEXT_DIR:-$HOME/.cache/caseguard-context/src}"
export CARGO_TARGET_DIR="${CG_CONTEXT_TARGET:-$HOME/.cache/caseguard-context-target}"

# The build stage: from the first FROM up to the next FROM.
build_stage() { awk '/^FROM /{n++} n==1' "$DOCKERFILE"; }
# The command the build stage runs: the `cargo build ...` of its RUN line.
BUILD_CMD=$(build_stage | grep -o 'cargo build [^&\\]*' | head -n1 | sed 's/[[:space:]]*$//')
[ -n "$BUILD_CMD" ] || { echo "no 'cargo build' in the build stage of $DOCKERFILE" >&2; exit 1; }

rm -rf "$CONTEXT"
mkdir -p "$CONTEXT"
copied=0
while read -r instr rest; do
  [ "$instr" = COPY ] || continue
  # shellcheck disable=SC2206
  args=($rest)
  case "${args[0]}" in
    --*) echo "COPY with a flag in the build stage is not understood here: COPY $rest" >&2; exit 1 ;;
  esac
  dest="${args[-1]}"
  unset 'args[-1]'
  for src in "${args[@]}"; do
    [ -e "$src" ] || { echo "COPY names $src, which the repository lacks" >&2; exit 1; }
    case "$dest" in
      ./|.) target="$CONTEXT/$(basename "$src")" ;;
      */) target="$CONTEXT/$dest$(basename "$src")" ;;
      *) target="$CONTEXT/$dest" ;;
    esac
    mkdir -p "$(dirname "$target")"
    cp -a "$src" "$target"
    copied=$((copied + 1))
  done
done < <(build_stage)
echo "context: $copied paths from the COPY lines of $DOCKERFILE into $CONTEXT"

# .dockerignore applies to the context the engine sends: drop what it names.
if [ -f .dockerignore ]; then
  while read -r pattern; do
    case "$pattern" in ''|\#*) continue ;; esac
    rm -rf "${CONTEXT:?}/$pattern"
  done < .dockerignore
fi

cd "$CONTEXT"
echo "running: $BUILD_CMD --offline (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
start=$(date +%s)
# shellcheck disable=SC2086
$BUILD_CMD --offline
echo "context build: passed in $(($(date +%s) - start)) s"
test -x "$CARGO_TARGET_DIR/release/caseguard"
