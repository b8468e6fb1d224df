-- Suspends the resource: spec.suspend = true. The controller keeps reporting drift but starts
-- no OOS executions until it is resumed.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.suspend = true
return obj
