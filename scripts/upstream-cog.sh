#!/usr/bin/env bash
# scripts/upstream-cog.sh — builds upstream Cog's CLI (github.com/replicate/cog) from the Go module proxy
# for the build benchmark, cached in ~/.cache/cog-ts-testbed/upstream-cog/cog-$VERSION. Prints its path.
#
# `go install github.com/replicate/cog/cmd/cog@v0.22.0` refuses the module because its go.mod has
# `replace` directives, so we build it from a throwaway module that requires it and repeats those
# replaces (copied from the released go.mod in the module cache).
#
# Beside it, cog-stage-$VERSION: `cog debug`'s code path (model.NewSource, NewStandardGenerator,
# GenerateDockerfileWithoutSeparateWeights) with the build directory (.cog/build, the `cog_build` named
# context) placed where the caller says and kept: `cog debug` deletes it on exit and pings a Docker
# daemon first. Usage: cog-stage BUILD_DIR [CONFIG_FILE] — prints the Dockerfile; always the
# python-slim / nvidia-cuda path (--use-cog-base-image=false), since r8.im/cog-base needs the internet.
#
# Settings: UPSTREAM_COG_VERSION (v0.22.0), COG_TESTBED_CACHE (~/.cache/cog-ts-testbed)
set -euo pipefail
shopt -s inherit_errexit

VERSION=${UPSTREAM_COG_VERSION:-v0.22.0}
CACHE=${COG_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cog-ts-testbed}
OUT=$CACHE/upstream-cog
BIN=$OUT/cog-$VERSION
STAGE=$OUT/cog-stage-$VERSION

die() {
  printf 'upstream-cog: error: %s\n' "$*" >&2
  exit 1
}

if [ -x "$BIN" ] && [ -x "$STAGE" ]; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || die "Go is needed to build upstream cog $VERSION"
mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/upstream-cog.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$OUT/build-$VERSION.log
printf 'upstream-cog: building github.com/replicate/cog %s from the Go module proxy (once; log: %s)\n' \
  "$VERSION" "$log" >&2

export GOFLAGS=-mod=mod
cd "$work"
go mod init cogts.local/upstream-cog >"$log" 2>&1
info=$(go mod download -json "github.com/replicate/cog@$VERSION" 2>>"$log") ||
  die "go mod download github.com/replicate/cog@$VERSION failed (see $log)"
src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")
commit=$(sed -n 's/^[[:space:]]*"Hash": "\(.*\)",\{0,1\}$/\1/p' <<<"$info" | head -1)
[ -d "$src" ] || die "go mod download github.com/replicate/cog@$VERSION failed (see $log)"

# The released go.mod's `go` line and replace directives (block or single-line form).
go_line=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$src/go.mod" | head -1)
replaces=$(awk '
  /^replace \($/ { inblock = 1; next }
  inblock && /^\)$/ { inblock = 0; next }
  inblock && NF { sub(/^[ \t]+/, ""); print; next }
  /^replace [^(]/ { sub(/^replace /, ""); print }
' "$src/go.mod")
{
  echo "module cogts.local/upstream-cog"
  echo
  echo "go ${go_line:-1.26}"
  echo
  echo "require github.com/replicate/cog $VERSION"
  if [ -n "$replaces" ]; then
    echo
    echo "replace ("
    printf '\t%s\n' "${replaces//$'\n'/$'\n\t'}" | sed 's/^\t\t/\t/'
    echo ")"
  fi
} >go.mod
echo "--- go.mod" >>"$log"
cat go.mod >>"$log"
cat >main.go <<'GO'
// Upstream Cog's CLI, built outside its own module so the module's replace directives can be repeated.
package main

import (
	"github.com/replicate/cog/pkg/cli"
	"github.com/replicate/cog/pkg/util/console"
)

func main() {
	cmd, err := cli.NewRootCommand()
	if err != nil {
		console.Fatalf("%s", err)
	}
	if err = cmd.Execute(); err != nil {
		console.Fatalf("%s", err)
	}
}
GO
mkdir stage
cat >stage/main.go <<'GO'
// cog debug's Dockerfile generation with a kept, caller-chosen build directory and no Docker daemon.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/replicate/cog/pkg/dockerfile"
	"github.com/replicate/cog/pkg/model"
	"github.com/replicate/cog/pkg/registry"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cog-stage:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) < 2 {
		return fmt.Errorf("usage: cog-stage BUILD_DIR [CONFIG_FILE]")
	}
	buildDir, err := filepath.Abs(os.Args[1])
	if err != nil {
		return err
	}
	configFile := ""
	if len(os.Args) > 2 {
		configFile = os.Args[2]
	}
	src, err := model.NewSource(configFile)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := os.RemoveAll(buildDir); err != nil {
		return err
	}
	if err := os.MkdirAll(buildDir, 0o755); err != nil {
		return err
	}
	generator, err := dockerfile.NewStandardGenerator(src.Config, src.ProjectDir, buildDir, src.ConfigFilename, nil, registry.NewRegistryClient(), true)
	if err != nil {
		return err
	}
	generator.SetUseCudaBaseImage("auto")
	generator.SetUseCogBaseImage(false)
	text, err := generator.GenerateDockerfileWithoutSeparateWeights(context.Background())
	if err != nil {
		return err
	}
	fmt.Println(text)
	return nil
}
GO
# Same versions of every dependency as the release: seed go.sum from it, then resolve.
cp "$src/go.sum" go.sum
chmod u+w go.sum
go mod tidy >>"$log" 2>&1 || die "go mod tidy failed (see $log)"
# CGo: go-tree-sitter (the static Python schema parser), as in the release build.
CGO_ENABLED=1 go build -trimpath \
  -ldflags "-s -w -X github.com/replicate/cog/pkg/global.Version=${VERSION#v} -X github.com/replicate/cog/pkg/global.Commit=${commit:-unknown}" \
  -o "$BIN.tmp" . >>"$log" 2>&1 || die "go build failed (see $log)"
CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X github.com/replicate/cog/pkg/global.Version=${VERSION#v}" \
  -o "$STAGE.tmp" ./stage >>"$log" 2>&1 || die "go build ./stage failed (see $log)"
mv "$STAGE.tmp" "$STAGE"
mv "$BIN.tmp" "$BIN"
echo "$BIN"
