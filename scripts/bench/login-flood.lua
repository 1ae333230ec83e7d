-- Wrong passwords for made-up users from made-up addresses (behind a trusted proxy), so no
-- throttle delay applies: every attempt goes to the password pool (argon2id dummy hash).
local interaction = os.getenv("INTERACTION")
local csrf = os.getenv("CSRF")
math.randomseed(os.time())
request = function()
  local ip = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  local body = "interaction=" .. interaction .. "&csrf=" .. csrf
    .. "&username=user" .. math.random(1, 1000000000) .. "&password=wrong"
  return wrk.format("POST", "/login", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Forwarded-For"] = ip,
  }, body)
end
-- Each connection waits this long between attempts: 160 connections make a few hundred wrong
-- passwords a second, the flood of the issue, rather than an HTTP flood of cheap refusals.
delay = function()
  return 250
end
