/* Etsy StatsD 0.9 configuration for the integration tests; loaded by
 * tests/integration/lib/statsd.sh (statsd_start). StatsD eval()s this file, so
 * the ports come from the environment the harness sets:
 *   IG_STATSD_PORT       UDP port metrics are sent to
 *   IG_STATSD_MGMT_PORT  TCP management port (counters, gauges, timers, health)
 *   IG_STATSD_CONSOLE=1  also print each flush on stdout (debugging)
 * Nothing is forwarded anywhere: the tests read values back from the
 * management interface. flushInterval is long and deleteCounters false, so a
 * counter keeps its sum for the whole test. */
{
	address: "127.0.0.1",
	port: parseInt(process.env.IG_STATSD_PORT || "8125", 10),
	mgmt_address: "127.0.0.1",
	mgmt_port: parseInt(process.env.IG_STATSD_MGMT_PORT || "8126", 10),
	backends: process.env.IG_STATSD_CONSOLE === "1" ? ["./backends/console"] : [],
	flushInterval: 3600000,
	deleteCounters: false,
	deleteGauges: false,
	automaticConfigReload: false,
	debug: false,
	dumpMessages: process.env.IG_STATSD_CONSOLE === "1",
}
