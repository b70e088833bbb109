#!/usr/bin/env bash
# docs/configuration.md is generated from the option tables
# (`ingrain-aggregator --print-config-reference`). This test fails when the
# committed file is stale, so the reference never drifts from the code, and
# checks that both binaries accept the embedded default configuration.
source "$(dirname "$0")/lib.sh"
ig_require_built
"$IG_AGGREGATOR" --print-config-reference >"$IG_TMP/configuration.md"
if ! diff -u "$IG_SOURCE_DIR/docs/configuration.md" "$IG_TMP/configuration.md" >"$IG_TMP/diff.txt"; then
	head -n 40 "$IG_TMP/diff.txt"
	ig_fail "docs/configuration.md is stale: regenerate it with build/aggregator/ingrain-aggregator --print-config-reference > docs/configuration.md"
fi
ig_pass "docs/configuration.md matches the option tables"
"$IG_AGGREGATOR" --print-default-config >"$IG_TMP/default.yaml"
ig_check "aggregator accepts its embedded default" "$IG_AGGREGATOR" --check-config "$IG_TMP/default.yaml"
ig_check "agent accepts the embedded default" "$IG_AGENT" --check-config "$IG_TMP/default.yaml"
printf 'agent:\n  agregator: tcp://x:1\n' >"$IG_TMP/typo.yaml"
"$IG_AGENT" --check-config "$IG_TMP/typo.yaml" 2>"$IG_TMP/typo.err" && ig_fail "a typo was accepted"
ig_check "unknown key named with file:line:col and a suggestion" \
	grep -q "typo.yaml:2:3: agent.agregator: unknown key (did you mean 'aggregator'?)" "$IG_TMP/typo.err"
ig_done
