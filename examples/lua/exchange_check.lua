-- Microsoft Exchange health check: GET /<vdir>/healthcheck.htm over HTTPS
-- (the per-protocol Managed Availability probe page). A healthy protocol
-- answers 200 with "200 OK" and the server's FQDN in the body; a protocol
-- taken out of service answers 503 (or the connection fails).
--
-- params: vdir (default "ews"), host (the Host header / SNI, e.g.
-- mail.example.com), fqdn (optional: the body must name this server).

function check(server, params)
  local vdir = params.vdir or "ews"
  local scheme = params.scheme or "https"
  local r, err = net.http{
    url = scheme .. "://" .. server.address .. "/" .. vdir .. "/healthcheck.htm",
    host = params.host, sni = params.host,
    timeout = tonumber(params.timeout_ms) or 4000,
  }
  if not r then return false, vdir .. ": " .. err end
  if r.status ~= 200 then return false, vdir .. ": HTTP " .. r.status end
  if not r.body:find("200 OK", 1, true) then return false, vdir .. ": unexpected body" end
  if params.fqdn and not r.body:lower():find(params.fqdn:lower(), 1, true) then
    return false, vdir .. ": answered by another server"
  end
  return true, vdir .. " OK"
end
