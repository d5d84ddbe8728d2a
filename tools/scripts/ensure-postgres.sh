#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (/usr/lib/postgresql/<v>/bin) are
# present, installing Debian's postgresql package when they are not. The
# package's own default cluster is dropped: JSM runs its clusters itself
# (libs/pglocal), so nothing should listen on 5432 behind its back.
# Idempotent; prints the version found.
set -euo pipefail

find_initdb() {
	# Highest version first.
	ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true
}

initdb_path="$(find_initdb)"
if [[ -z "$initdb_path" ]]; then
	SUDO=()
	if [[ "$(id -u)" -ne 0 ]]; then
		command -v sudo >/dev/null || { echo "ensure-postgres: need root or sudo to install postgresql" >&2; exit 1; }
		SUDO=(sudo)
	fi
	echo "ensure-postgres: installing postgresql (apt-get)" >&2

	# Keep the package's service from starting during installation.
	policy=/usr/sbin/policy-rc.d
	added_policy=0
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
		"${SUDO[@]}" chmod 755 "$policy"
		added_policy=1
	fi
	cleanup() { if [[ "$added_policy" -eq 1 ]]; then "${SUDO[@]}" rm -f "$policy"; fi; }
	trap cleanup EXIT

	export DEBIAN_FRONTEND=noninteractive
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null

	# Drop the package's auto-created default cluster ("main"), stopping it first
	# if it runs anyway.
	if command -v pg_lsclusters >/dev/null; then
		pg_lsclusters --no-header 2>/dev/null | while read -r ver name _; do
			[[ -n "$ver" && "$name" == main ]] || continue
			"${SUDO[@]}" pg_dropcluster --stop "$ver" "$name" || true
		done
	fi

	initdb_path="$(find_initdb)"
	if [[ -z "$initdb_path" ]]; then
		echo "ensure-postgres: postgresql installed but no /usr/lib/postgresql/*/bin/initdb found" >&2
		exit 1
	fi
fi

bindir="$(dirname "$initdb_path")"
"$bindir/postgres" --version
