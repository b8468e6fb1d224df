-- Argo CD resource actions for ecsops.io kinds (EcsExtension today; PatchPolicy and AppRelease
-- will carry the same annotation and spec.suspend). Install under the argocd-cm key
-- resource.customizations.actions.ecsops.io_<Kind> (see ../README.md).
--
-- Offers:
--   reconcile  set ecsops.io/reconcile-requested-at to now: the controller reconciles at once
--   suspend    spec.suspend = true: no cloud writes (offered unless already suspended)
--   resume     spec.suspend = false (offered only while suspended)
-- Runs in Argo CD's Lua sandbox (gopher-lua, Lua 5.1, base/table/package libraries only).
local suspended = obj.spec ~= nil and obj.spec.suspend == true
local actions = {}
actions["reconcile"] = {}
actions["suspend"] = { disabled = suspended }
actions["resume"] = { disabled = not suspended }
return actions
