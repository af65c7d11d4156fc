-- SMTP banner check: connect, expect a 220 banner, say EHLO, expect the
-- final "250 " line (optionally STARTTLS when params.starttls = "true"),
-- then QUIT. The reason carries the server's own words.
--
-- backends: [{name: smtp, check: {kind: lua, script: smtp.check,
--             params: {helo: gw.example.com}}, ...}]

function check(server, params)
  local c, err = net.tcp(server.address, {timeout = tonumber(params.timeout_ms) or 3000})
  if not c then return false, "connect: " .. err end
  local banner, err = c:receive()
  if not banner then return false, "no banner: " .. err end
  if banner:sub(1, 3) ~= "220" then return false, "banner: " .. banner end
  c:send("EHLO " .. (params.helo or config.helo or "vipgate") .. "\r\n")
  local line, err = c:expect("250 ")
  if not line then return false, "EHLO: " .. err end
  if params.starttls == "true" then
    c:send("STARTTLS\r\n")
    local ok, err = c:expect("220 ")
    if not ok then return false, "STARTTLS: " .. err end
    local ok, err = c:starttls({sni = params.sni})
    if not ok then return false, err end
  end
  c:send("QUIT\r\n")
  return true, banner
end
