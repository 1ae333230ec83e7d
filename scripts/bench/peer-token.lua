-- client_credentials with client_secret_post, the same request for every server that
-- scripts/bench-peers measures; the client, its secret and the scope come from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=" .. os.getenv("CLIENT_ID")
  .. "&client_secret=" .. os.getenv("CLIENT_SECRET")
  .. "&scope=" .. os.getenv("SCOPE")
