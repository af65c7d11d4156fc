-- VRRP track script: is this node's proxy really serving? It asks the
-- proxy itself (frontends listening, each backend with a usable server)
-- and then fetches a URL through the VIP, as a client would.
--
-- vrrp.instances[].track: [{kind: lua, name: proxy, script: track.proxy,
--   interval: 2s, fall: 2, rise: 2, weight: -30,
--   params: {url: "http://198.18.1.100/healthz", frontends: "web"}}]
--
-- Returns false with a reason when unhealthy; keepalived-style weight
-- applies. With params.degraded_delta the function instead returns a
-- priority delta when only some backends are down.

function proxy(target, params)
  local names = {}
  for f in (params.frontends or ""):gmatch("[^,%s]+") do names[#names + 1] = f end
  local ok, reason = vipgate.local_healthy(names)
  if not ok then return false, "local proxy: " .. reason end
  if params.url then
    local r, err = net.http{url = params.url, host = params.host, timeout = tonumber(params.timeout_ms) or 1500}
    if not r then return false, "via VIP: " .. err end
    if r.status >= 500 then return false, "via VIP: HTTP " .. r.status end
  end
  if params.degraded_delta and params.backend then
    local total, up = #vipgate.servers(params.backend), vipgate.up(params.backend)
    if up < total then return true, tonumber(params.degraded_delta), up .. "/" .. total .. " servers up" end
  end
  return true, "serving"
end
