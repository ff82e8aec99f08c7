"""The upstream of bench/live.py: an aiohttp server answering ~1 KB of JSON whose personal-data
type depends on the path (/pii/<email|phone|iban>/<n>), so pairings can be checked in events.

    python bench/live_server.py HOST PORT
"""
import json
import sys

from aiohttp import web

TYPED = {"email": {"email": "jane.doe@example.com"}, "phone": {"phone": "+1 415-555-2671"},
         "iban": {"iban": "DE89370400440532013000"}}
PADDING = [{"sku": f"SKU-{i:04d}", "qty": i, "title": "a product of the catalogue"} for i in range(14)]


async def typed(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    body = json.dumps({"request": request.path, "contact": TYPED.get(kind, {}), "items": PADDING})
    return web.Response(text=body, content_type="application/json")


if __name__ == "__main__":
    app = web.Application()
    app.router.add_get("/pii/{kind}/{n}", typed)
    web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), access_log=None, print=None)
