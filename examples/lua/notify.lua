-- Event handler: post state changes to a chat webhook as JSON.
--
-- handlers: [{events: [server.down, server.up, backend.empty, vrrp.transition,
--             dc.failover], function: post}]

function post(ev)
  local text = string.format("[%s] %s %s: %s", ev.level, ev.node, ev.kind, ev.message)
  local r, err = net.http{
    url = config.webhook, method = "POST",
    headers = {["Content-Type"] = "application/json"},
    body = json.encode({text = text, kind = ev.kind, subject = ev.subject, attrs = ev.attrs}),
  }
  if not r then error("webhook: " .. err) end
  if r.status >= 300 then error("webhook: HTTP " .. r.status) end
end
