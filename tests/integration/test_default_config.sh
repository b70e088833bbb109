#!/usr/bin/env bash
# The embedded default configuration, as the quick start runs it: the real
# aggregator and agent with `--print-default-config` (only the port and the
# state directory moved, so that the test runs beside anything else). A person
# watching must see who opened what under /etc, in text, and not the dynamic
# loader's /etc/ld.so.cache open that every exec makes (the default pipeline's
# documented `filter` stage drops it).
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_built

port=$(ig_free_port)
cfg="$IG_TMP/config.yaml"
"$IG_AGENT" --print-default-config >"$IG_TMP/default.yaml"
grep -q 'type: filter' "$IG_TMP/default.yaml" || ig_fail "the default pipeline has no filter stage"
sed -e "s|tcp://127.0.0.1:7700|tcp://127.0.0.1:$port|" \
	-e "s|state_dir: /var/lib/ingrain|state_dir: $IG_TMP/state|" "$IG_TMP/default.yaml" >"$cfg"
[ "$(grep -c "127.0.0.1:$port" "$cfg")" -eq 2 ] || ig_fail "the default config's addresses moved: update this test"
# The rest must be the embedded default, byte for byte.
diff <(grep -v -e "127.0.0.1:" -e "state_dir:" "$IG_TMP/default.yaml") \
	<(grep -v -e "127.0.0.1:" -e "state_dir:" "$cfg") >/dev/null || ig_fail "config differs beyond port/state_dir"
"$IG_AGGREGATOR" --check-config "$cfg" >/dev/null || ig_fail "the default config does not validate"

# The console backend writes to the aggregator's standard output: its log here.
ig_start_aggregator "$cfg"
ig_start_agent "$cfg"
log="$IG_TMP/aggregator.log"

# Each exec opens /etc/ld.so.cache; cat then opens the marker file.
marker=$(mktemp /etc/ingrain-default-config.XXXXXX)
for _ in 1 2 3; do /bin/true; done
cat "$marker" >/dev/null
rm -f "$marker"
ig_wait_for "cat's open of $marker in the console output" 15 grep -q "process=cat .*path=$marker" "$log"
line=$(grep "process=cat .*path=$marker" "$log" | head -n 1)
ig_log "console line: $line"
ig_check "the line has the time, the event, the pid and the result" \
	grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z file.open process=cat pid=[0-9]+ uid=0 path=$marker ret=[0-9]+ access=r$" <<<"$line"
ig_check "no /etc/ld.so.cache line (the loader's noise is filtered)" \
	bash -c "! grep -q 'path=/etc/ld.so.cache' '$log'"
ig_done
