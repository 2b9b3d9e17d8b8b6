#!/usr/bin/env bash
# Installs FerretDB 1.24.2 (a MongoDB-wire server with an embedded SQLite backend) from the
# Go module proxy into /usr/local/bin (or $FERRETDB_BIN_DIR). The Mongo adapter's tests
# start it on a loopback port with a temporary data directory.
#
# `go install ...@v1.24.2` builds a binary that panics at start: the module ships without
# build/version/version.txt. So: download the module, add that file, build.
set -euo pipefail
version=v1.24.2
bin_dir="${FERRETDB_BIN_DIR:-/usr/local/bin}"
# `--version` output is read whole before it is matched: piping it into `grep -q` or `head`
# ends the pipe early, and under pipefail the SIGPIPE of the writer fails the check (or the run).
installed_version() { "$bin_dir/ferretdb" --version 2>/dev/null || true; }
if [ -x "$bin_dir/ferretdb" ] && [[ "$(installed_version)" == *"version: $version"* ]]; then
  echo "ferretdb $version already installed in $bin_dir"
  exit 0
fi
command -v go >/dev/null || { echo "install-ferretdb: Go is required (https://go.dev)" >&2; exit 1; }
echo "building ferretdb $version from the Go module proxy (a few minutes the first time)"
src=$(go mod download -json "github.com/FerretDB/FerretDB@$version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
[ -n "$src" ] || { echo "install-ferretdb: module download failed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
echo "$version" > "$work/src/build/version/version.txt"
(cd "$work/src" && go build -o "$work/ferretdb" ./cmd/ferretdb)
install -m 0755 "$work/ferretdb" "$bin_dir/ferretdb"
out=$("$bin_dir/ferretdb" --version)
echo "${out%%$'\n'*}"
