-- Sticky-by-user routing: every request of one user goes to the same server
-- of config.backend, as long as that server is usable. The user comes from
-- a header (config.header, e.g. set by an SSO front), else a cookie
-- (config.cookie), else the query parameter config.param. Requests without
-- a user are balanced normally.
--
-- The server is chosen by rendezvous (highest random weight) hashing over
-- the usable servers: when one goes down only its users move, and they come
-- back when it returns.

local function hash(s)
  -- Kept below 2^53 so the arithmetic stays exact in Lua numbers.
  local h = 7
  for i = 1, #s do h = (h * 31 + s:byte(i)) % 4294967291 end
  -- Mix once more so that similar names spread.
  return (h * 2654435761) % 4294967296
end

local function user_of(txn)
  if config.header then
    local u = txn:header(config.header)
    if u and u ~= "" then return u end
  end
  if config.cookie then
    local u = txn:cookie(config.cookie)
    if u and u ~= "" then return u end
  end
  if config.param then return txn:query_param(config.param) end
end

function route(txn)
  local user = user_of(txn)
  if not user then return end
  local best, best_score
  for _, s in ipairs(vipgate.servers(config.backend)) do
    if s.usable and not s.backup then
      local score = hash(user .. "@" .. s.name)
      if not best_score or score > best_score then best, best_score = s.name, score end
    end
  end
  if not best then return end -- nothing usable: let the proxy decide
  txn:set_var("sticky_user", user)
  txn:use_server(config.backend, best)
end
