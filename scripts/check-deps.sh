#!/usr/bin/env bash
# Checks the dependency invariants of DESIGN.md with `cargo tree`.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
bad() { echo "dependency invariant broken: $*" >&2; fail=1; }

tree() { cargo tree --quiet -e normal --prefix none "$@" | sed 's/ (.*//' | sort -u; }

# air-checkpoint is the small stable core: no data-frame, ML, HTTP-server crate, no tokio "full".
ck=$(tree -p air-checkpoint)
for heavy in polars burn axum; do
  if grep -Eq "^${heavy}( |-)" <<<"$ck"; then bad "air-checkpoint pulls $(grep -E "^${heavy}( |-)" <<<"$ck" | head -1)"; fi
done
if cargo tree --quiet -p air-checkpoint -e features -i tokio 2>/dev/null | grep -q 'tokio feature "full"'; then
  bad "air-checkpoint enables tokio's \"full\" feature"
fi

# Only air-train and air-rl (and the facade) depend on burn directly; only air-serve on axum.
for crate in air-checkpoint air-data air-tune air-serve; do
  direct=$(cargo tree --quiet -p "$crate" -e normal --depth 1 --prefix none | sed 's/ (.*//')
  grep -Eq '^burn' <<<"$direct" && bad "$crate depends on burn directly"
done
for crate in air-checkpoint air-data air-train air-tune air-rl; do
  grep -Eq '^axum ' <<<"$(tree -p "$crate")" && bad "$crate pulls axum"
done

# Pick one crate, build one crate: the serving and tuning crates use air-train's runtime only,
# and the facade's default features (the quick start) build no deep-learning or classical-ML
# framework.
for crate in air-serve air-tune air; do
  frameworks=$(tree -p "$crate" | grep -E '^(burn|cubecl|smartcore)( |-)' || true)
  [ -n "$frameworks" ] && bad "$crate (default features) pulls $(head -3 <<<"$frameworks" | tr '\n' ' ')"
done

# One version of each heavy dependency in the whole workspace.
dups=$(cargo tree --quiet --workspace -e normal --duplicates --prefix none 2>/dev/null | sed 's/ (.*//' | sort -u)
for heavy in polars polars-core burn burn-core burn-flex object_store arrow tokio axum hyper reqwest; do
  n=$(grep -Ec "^${heavy} v" <<<"$dups" || true)
  [ "$n" -gt 1 ] && bad "$heavy is built in $n versions: $(grep -E "^${heavy} v" <<<"$dups" | tr '\n' ' ')"
done

[ $fail = 0 ] && echo "dependency invariants hold"
exit $fail
