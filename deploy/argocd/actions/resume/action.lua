-- Resumes a suspended resource: spec.suspend = false. The controller closes any drift found
-- meanwhile on its next reconcile.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.suspend = false
return obj
