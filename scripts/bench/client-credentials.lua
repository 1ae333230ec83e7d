-- client_credentials for the orders worker; the secret comes from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=default.orders-worker&client_secret="
  .. os.getenv("SECRET")
