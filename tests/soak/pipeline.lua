-- pipeline.lua - the soak test's pipelined part, a wrk script: every write
-- carries 16 requests (/plaintext, /json and a small static file in turn),
-- sent without waiting for the answers; wrk counts each answer.
--
-- Run: wrk -s tests/soak/pipeline.lua http://127.0.0.1:PORT
-- wrk sizes its pipeline from the first call, so every call returns the
-- same number of requests.

local batch

function init(args)
	local paths = { "/plaintext", "/json", "/static/small.txt" }
	local parts = {}
	for i = 1, 16 do
		parts[i] = wrk.format("GET", paths[(i % #paths) + 1])
	end
	batch = table.concat(parts)
end

function request()
	return batch
end
