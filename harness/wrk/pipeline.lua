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
