#!/usr/bin/env bash
# clone.sh URL REF COMMIT DEST [LEAVE_OUT...]: fetch one ref (tag or commit) shallowly and refuse
# any other commit. A partial clone: the commit and its trees first, then only the blobs of the
# files checked out; each LEAVE_OUT path (e.g. /assets/, sample images) is never checked out, so
# its blobs are never fetched and a mirror may lack them. A LEAVE_OUT path written `?/path` is
# left out only when the remote lacks its blob, and the build log says so.
set -Eeuo pipefail
url="$1"
ref="$2"
commit="$3"
dest="$4"
shift 4

git init --quiet "${dest}"
git -C "${dest}" remote add origin "${url}"
git -C "${dest}" config extensions.partialClone origin
git -C "${dest}" config remote.origin.promisor true
git -C "${dest}" config remote.origin.partialclonefilter blob:none
git -C "${dest}" fetch --quiet --depth 1 --filter=blob:none origin "${ref}"
got="$(git -C "${dest}" rev-parse 'FETCH_HEAD^{commit}')"
if [ "${got}" != "${commit}" ]; then
  printf 'error: %s %s is commit %s, expected %s\n' "${url}" "${ref}" "${got}" "${commit}" >&2
  exit 1
fi
leave_out=()
for path in "$@"; do
  case "${path}" in
    \?*)
      path="${path#\?}"
      blob="$(git -C "${dest}" ls-tree "${commit}" -- "${path#/}" | awk '{print $3}')"
      if [ -n "${blob}" ] && git -C "${dest}" cat-file blob "${blob}" >/dev/null 2>&1; then
        continue
      fi
      printf 'note: %s lacks %s at %s: left out of the checkout\n' "${url}" "${path}" "${commit}" >&2
      leave_out+=("${path}") ;;
    *) leave_out+=("${path}") ;;
  esac
done
if [ "${#leave_out[@]}" -gt 0 ]; then
  git -C "${dest}" config core.sparseCheckout true
  { echo '/*'; printf '!%s\n' "${leave_out[@]}"; } >"${dest}/.git/info/sparse-checkout"
fi
git -C "${dest}" -c advice.detachedHead=false checkout --quiet "${commit}"
