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

-- pipeline.lua - HTTP/1.1 pipelining: every write carries DEPTH requests
-- (default 16, as in the TechEmpower plaintext test), sent back to back
-- without waiting for the answers. wrk counts each answer as a request.
--
-- Run: wrk -s pipeline.lua URL -- 16
-- What it shows: how well a server answers many requests found in one read
-- with few system calls (ideally one write for all sixteen answers).

local batch

function init(args)
	local depth = tonumber(args[1]) or 16
	local one = wrk.format(nil, wrk.path)
	batch = string.rep(one, depth)
end

function request()
	return batch
end
