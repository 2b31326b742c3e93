-- Argo CD health check for maestro.dev MicroserviceApp (Argo CD runs it with gopher-lua: Lua 5.1).
-- A status computed for an older spec says nothing about the current one: Progressing until the
-- operator has observed the current generation. Then Stalled/Degraded -> Degraded, Ready -> Healthy.
local hs = { status = "Progressing", message = "Waiting for the Maestro operator to report status" }

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function message(c, default)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return default
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration < generation then
  hs.message = "Waiting for the Maestro operator to observe generation " .. generation
    .. " (status is for generation " .. status.observedGeneration .. ")"
  return hs
end

local ready = condition(status, "Ready")
local degraded = condition(status, "Degraded")
local stalled = condition(status, "Stalled")
local phase = status.phase or "Unknown"

if phase == "Invalid" then
  local reason = "InvalidSpec"
  if ready ~= nil and ready.reason ~= nil then
    reason = ready.reason
  end
  hs.status = "Degraded"
  hs.message = "Invalid (" .. reason .. "): " .. message(ready, "the spec cannot be carried out")
elseif phase == "Degraded" or is_true(degraded) or is_true(stalled) then
  hs.status = "Degraded"
  hs.message = message(degraded, message(stalled, message(ready, "a rollout failed")))
elseif is_true(ready) then
  hs.status = "Healthy"
  hs.message = message(ready, "all services ready")
else
  hs.status = "Progressing"
  hs.message = phase .. ": " .. message(ready, "services not ready yet")
end
return hs
