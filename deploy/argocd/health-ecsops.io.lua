-- Argo CD health check for every ecsops.io kind (EcsExtension today; PatchPolicy and AppRelease
-- use the same kstatus conditions, so this script needs no change for them).
--
-- Install it under one argocd-cm key per kind: resource.customizations.health.ecsops.io_<Kind>
-- (see README.md). Argo CD runs it with the live object in the global `obj` and expects a table
-- { status = Healthy | Progressing | Degraded | Suspended, message = string }.
--
-- Order of the rules:
--   1. status.observedGeneration behind metadata.generation -> Progressing (the controller has not
--      reconciled the current spec yet, so older conditions say nothing about it).
--   2. Stalled=True -> Degraded (no progress until the spec changes: bad template, parameter,
--      permission).
--   3. spec.suspend -> Suspended (no cloud writes while suspended).
--   4. Ready=True -> Healthy.
--   5. Ready=False with a failure reason (failedReasons below: InstallFailed, and PatchFailed for
--      the planned PatchPolicy) -> Degraded.
--   6. Anything else (Reconciling, Pending, DriftDetected, RetryBackoff, first visit) -> Progressing.
-- Written for Lua 5.1 (gopher-lua, Argo CD's interpreter); also runs on 5.3 / 5.4.
-- Argo CD runs custom health checks with only the base, table and package libraries (unless
-- argocd-cm sets resource.customizations.useOpenLibs.<group>_<kind>), so this script must not
-- use string.*, math.* or string methods. test/unit/deploy/argocd-gopher-lua.test.ts runs it in
-- that sandbox.

local hs = { status = "Progressing", message = "Waiting for the ecsops controller to reconcile" }

local function findCondition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    if text ~= "" then
      text = text .. ": " .. c.message
    else
      text = c.message
    end
  end
  if text == "" then
    return fallback
  end
  return text
end

-- Ready=False reasons that mean the declared state failed to apply (not merely "in progress").
-- An explicit list, not a "...Failed" suffix match: the sandbox has no string library. Add the
-- failure reasons of PatchPolicy and AppRelease here when they ship.
local failedReasons = { InstallFailed = true, PatchFailed = true }

local function isFailedReason(reason)
  return reason ~= nil and failedReasons[reason] == true
end

local status = obj.status or {}
local spec = obj.spec or {}
local generation = (obj.metadata or {}).generation
local conditions = status.conditions

if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the ecsops controller to observe generation " .. tostring(generation)
  end
  return hs
end

local stalled = findCondition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

local ready = findCondition(conditions, "Ready")

if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = describe(ready, "Suspended")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

if ready ~= nil and ready.status == "False" and isFailedReason(ready.reason) then
  hs.status = "Degraded"
  hs.message = describe(ready, "Failed")
  return hs
end

local reconciling = findCondition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling, hs.message)
else
  hs.message = describe(ready, hs.message)
end
return hs
