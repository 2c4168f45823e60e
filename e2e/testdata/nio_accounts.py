"""Account flows through matrix-nio, a real Matrix client library.

Usage: nio_accounts.py BASE_URL. Prints one line per step; the Go test
checks them. Exits non-zero on an unexpected answer.
"""
import asyncio
import sys

import nio


async def main(base):
    c = nio.AsyncClient(base, "niouser")
    r = await c.register("niouser", "pw-nio", "nio device")
    assert isinstance(r, nio.RegisterResponse), r
    print("register", r.user_id)
    r = await c.login("pw-nio", device_name="nio login")
    assert isinstance(r, nio.LoginResponse), r
    print("login", r.user_id)
    r = await c.whoami()
    assert isinstance(r, nio.responses.WhoamiResponse), r
    print("whoami", r.user_id)
    r = await c.devices()
    assert isinstance(r, nio.DevicesResponse), r
    print("devices", len(r.devices))
    bad = nio.AsyncClient(base, "niouser")
    r = await bad.login("wrong password")
    assert isinstance(r, nio.LoginError), r
    print("bad-login", r.status_code)
    r = await c.logout()
    assert isinstance(r, nio.LogoutResponse), r
    print("logout ok")
    r = await c.whoami()
    assert isinstance(r, nio.responses.WhoamiError), r
    print("whoami-after-logout", r.status_code)
    await c.close()
    await bad.close()


asyncio.run(main(sys.argv[1]))
