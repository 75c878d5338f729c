-- Builds the environment of FUNCTION libraries. Arguments: the VM's private
-- table (its `loading` field is true while a library body runs), the VM's
-- globals, and the `redis` table of the load-time API.
local hidden, globals, load_redis = ...
local rawget, error, tostring, setmetatable = rawget, error, tostring, setmetatable

local function readonly()
  error("Attempt to modify a readonly table", 2)
end

-- A read-only view of the load-time `redis` table.
local load_api = {redis = setmetatable({}, {
  __index = function(t, k)
    local v = rawget(load_redis, k)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = readonly,
})}

-- The environment, and the load-time API for the VM to make read-only.
return setmetatable({}, {
  __index = function(t, k)
    local v = rawget(hidden.loading and load_api or globals, k)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = readonly,
}), load_api
