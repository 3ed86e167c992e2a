"""Background loop services (scheduler, zombie killer, Lazarus), run inside the API's lifespan
or alone with `headwater services`. Each is a thin loop around domain functions in headwater.server.domain."""
