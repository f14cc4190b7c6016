-- GET of the URL given on wrk's command line, nothing else: the decide, bare and no-op routes.
dofile(os.getenv("WEFT_WRK_DIR") .. "/report.lua")
