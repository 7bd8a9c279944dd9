-- mix.lua - the soak test's keep-alive mix, a wrk script: each connection
-- cycles through /plaintext, /json, a small static file, a 64 KiB static
-- file and a 1 KiB POST /echo, and every 500th request is a /delay/1.
--
-- Run: wrk -s tests/soak/mix.lua http://127.0.0.1:PORT
-- What it shows: the server's memory and descriptors stay flat under a long
-- mixed load; every answer must be 2xx (wrk counts the others).

local reqs
local delay
local n = 0

function init(args)
	local body = string.rep("e", 1024)
	reqs = {
		wrk.format("GET", "/plaintext"),
		wrk.format("GET", "/json"),
		wrk.format("GET", "/static/small.txt"),
		wrk.format("GET", "/static/64k.bin"),
		wrk.format("POST", "/echo", nil, body),
	}
	delay = wrk.format("GET", "/delay/1")
end

function request()
	n = n + 1
	if n % 500 == 0 then
		return delay
	end
	return reqs[n % #reqs + 1]
end
