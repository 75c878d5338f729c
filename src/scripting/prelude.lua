-- Runs once when the Lua VM is created. Arguments are the private table
-- the Rust side fills per script run, and the functions it provides.
local hidden, raw_pcall, select, type, getinfo = ...
local tostring, sub = tostring, string.sub

redis.error_reply = function(...)
  local e = ...
  if select('#', ...) ~= 1 or (type(e) ~= 'string' and type(e) ~= 'number') then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {err = hidden.error_code_form(e)}
end

redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or (type(s) ~= 'string' and type(s) ~= 'number') then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = s}
end

-- As Redis 7 does: an error table caught by pcall becomes its message.
local function unwrap(ok, ...)
  if ok then
    return ok, ...
  end
  local e = ...
  if type(e) == 'userdata' then
    local msg, plain = hidden.describe(e)
    e = plain and ('ERR ' .. msg) or msg
  elseif type(e) == 'table' then
    local msg = e.err
    if type(msg) == 'string' or type(msg) == 'number' then
      e = msg
    end
  end
  return false, e
end

pcall = function(...)
  return unwrap(raw_pcall(...))
end

-- The xpcall message handler: whatever was raised becomes an error table
-- {err=..., line=...}, the line being where the user's code was running.
hidden.handler = function(e)
  local where, line = nil, 0
  for level = 2, 64 do
    local info = getinfo(level, 'Sl')
    if not info then
      break
    end
    if info.what ~= 'C' and sub(info.source, 1, 1) ~= '=' then
      where, line = info.short_src, info.currentline
      break
    end
  end
  local t = type(e)
  if t == 'string' or t == 'number' then
    e = {err = 'ERR ' .. tostring(e)}
  elseif t ~= 'table' then
    local msg, plain = hidden.describe(e)
    if plain and where then
      -- A Lua-style runtime error from a library function: positioned
      -- at the caller's line, as Lua's own C libraries report them.
      msg = 'ERR ' .. where .. ':' .. line .. ': ' .. msg
    elseif plain then
      msg = 'ERR ' .. msg
    end
    e = {err = msg}
  end
  e.line = line
  return e
end
