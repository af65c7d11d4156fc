-- Header-based canary routing.
--
-- A request goes to the canary backend when it carries the canary header
-- (config.header, value config.value), or the canary cookie, or when its
-- client falls into the first config.percent percent (stable per client
-- address). When the canary backend has no usable server, everything stays
-- on the frontend's default backend.
--
-- frontends: [{name: web, ..., default_backend: app, route: canary.route}]

local function bucket(s)
  -- A small stable hash (djb2) of the client address, 0..99.
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 4294967296 end
  return h % 100
end

function route(txn)
  local want = txn:header(config.header) == (config.value or "1")
    or (config.cookie and txn:cookie(config.cookie) == "1")
    or bucket(txn:client_ip()) < (config.percent or 0)
  if not want then return end
  if vipgate.up(config.backend) == 0 then
    txn:set_var("canary", "skipped: no usable server")
    return
  end
  txn:set_var("canary", "yes")
  txn:set_header("X-Canary", "1")
  txn:set_response_header("X-Canary", "1")
  txn:use_backend(config.backend)
end
