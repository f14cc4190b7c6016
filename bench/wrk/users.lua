-- GET of the URL's path with a signed-in visitor's `ajs_user_id` cookie, cycling through
-- the users the Segment Edge SDK worker was seeded with. Arguments after `--`: the number
-- of seeded users (user-0 … user-<n-1>).

dofile(os.getenv("WEFT_WRK_DIR") .. "/report.lua")

local users = 1000
local counter = 0

function init(args)
  users = tonumber(args[1] or "") or users
  -- Threads start at different users so they do not read the same keys in step.
  counter = (tid or 1) * 7919
end

request = function()
  counter = counter + 1
  local cookie = "ajs_user_id=user-" .. tostring(counter % users)
  return wrk.format("GET", wrk.path, { ["Cookie"] = cookie })
end
