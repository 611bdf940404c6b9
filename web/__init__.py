"""The bundled web UI: the aiohttp app serving the pages, the browser client and discovery."""
