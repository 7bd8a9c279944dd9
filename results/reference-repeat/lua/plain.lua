-- report.lua - wrk's done() hook: prints every figure the harness needs on
-- one machine-readable line, "WRK_JSON {...}".
--
-- Why: `wrk --latency` prints only the 50/75/90/99th percentiles, rounded to
-- text with units. This hook reads the exact histogram instead (in
-- microseconds) and adds the 99.9th and 99.99th percentiles and the error
-- counters. The harness prepends this file to every workload script, since
-- wrk takes one script per run.

function done(summary, latency, requests)
	local e = summary.errors
	local fields = {
		string.format('"requests":%d', summary.requests),
		string.format('"duration_us":%d', summary.duration),
		string.format('"bytes":%d', summary.bytes),
		string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
			e.connect, e.read, e.write, e.status, e.timeout),
		string.format('"latency_us":{"min":%d,"mean":%.2f,"stdev":%.2f,"max":%d,' ..
			'"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p99_9":%d,"p99_99":%d}',
			latency.min, latency.mean, latency.stdev, latency.max,
			latency:percentile(50), latency:percentile(75), latency:percentile(90),
			latency:percentile(99), latency:percentile(99.9), latency:percentile(99.99)),
	}
	io.write("WRK_JSON {" .. table.concat(fields, ",") .. "}\n")
end

-- plain.lua - one request per write, the method, path and headers wrk was
-- given on its command line (wrk -H adds headers, e.g. Connection: close).
-- It adds nothing to wrk's own request loop; it exists so every run has a
-- script that the report hook (report.lua) can be prepended to.
