#!/usr/bin/env bash
# clone.sh URL REF COMMIT DEST: fetch one ref (tag or commit) shallowly and refuse any other commit.
set -Eeuo pipefail
url="$1"
ref="$2"
commit="$3"
dest="$4"

git init --quiet "${dest}"
git -C "${dest}" remote add origin "${url}"
git -C "${dest}" fetch --quiet --depth 1 origin "${ref}"
got="$(git -C "${dest}" rev-parse 'FETCH_HEAD^{commit}')"
if [ "${got}" != "${commit}" ]; then
  printf 'error: %s %s is commit %s, expected %s\n' "${url}" "${ref}" "${got}" "${commit}" >&2
  exit 1
fi
git -C "${dest}" -c advice.detachedHead=false checkout --quiet "${commit}"
