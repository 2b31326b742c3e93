-- Runs an Argo CD health script as Argo CD does: the object as the global `obj`, the script's returned table
-- read as {status, message}. The script gets only Lua's base functions and the string, table and math
-- libraries, a subset of what Argo CD offers, so a script that passes here does not rely on io or os.
-- Usage: lua5.1 argocd_health.lua HEALTH_SCRIPT OBJECT_FILE (a Lua chunk returning the object as a table).
local script = assert(loadfile(arg[1]))
local object = assert(loadfile(arg[2]))
local env = {
  obj = object(),
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  string = string, table = table, math = math,
}
setfenv(script, env)
local hs = script()
assert(type(hs) == "table", "the health script must return a table")
assert(type(hs.status) == "string", "the health script must set hs.status")
io.write(hs.status, "\n", tostring(hs.message or ""))
