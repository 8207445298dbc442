-- wrk script: every request a new Chatrace-style webhook (its own message id, so each one
-- stores a message). The secret comes from the environment:
--   WEBHOOK_SECRET=... wrk -t2 -c32 -d10s -s benches/wrk/webhook.lua \
--       http://127.0.0.1:3000/instagram/webhook
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Webhook-Secret"] = os.getenv("WEBHOOK_SECRET") or ""
  n = 0
end

function request()
  n = n + 1
  local body = string.format(
    '{"user_id":"%d","first_name":"Wrk","text":"load %d","message_id":"wrk-%d-%d-%d"}',
    n % 500, n, os.time(), id, n)
  return wrk.format(nil, nil, nil, body)
end
