"""The bundled web UI: the aiohttp app serving the pages, the static browser client and discovery."""
